package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

const legacyProg = "gs_auth_token_create"

const legacyUsage = "usage: gs_auth_token_create [-h] DSN\n"

const legacyHelp = legacyUsage + `
Create a new authentication token for the web hooks, store it in the
database in place of the old one, and print it.

positional arguments:
  DSN         the database: postgresql://USER@HOST:PORT/DB for PostgreSQL,
              or sqlite:PATH for a SQLite file (created if missing)

options:
  -h, --help  show this help message and exit

The PostgreSQL password need not be on the command line: leave it out of
the DSN and set PGPASSWORD, or put it in ~/.pgpass, or name a service from
~/.pg_service.conf with PGSERVICE.

Exit status: 0 the token was replaced; 1 the DSN is unusable; 2 the
connection or the write failed, or the arguments were wrong.

WARNING: every script that uses the old token stops working until its
configuration file is updated with the new token.
`

// CreateLegacy runs gs_auth_token_create with the given arguments (without
// the program name) and returns its exit status.
func CreateLegacy(args []string, stdout, stderr io.Writer) int {
	secrets := secretsIn(args, os.Getenv)
	stdout, stderr = newScrubWriter(stdout, secrets), newScrubWriter(stderr, secrets)
	var dsn string
	var positional []string
	for i, a := range args {
		switch {
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, legacyHelp)
			return ExitOK
		case a == "--":
			positional = append(positional, args[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprint(stderr, legacyUsage)
			fmt.Fprintf(stderr, "%s: error: unrecognized argument %q\n", legacyProg, a)
			return ExitFailed
		default:
			positional = append(positional, a)
			continue
		}
		if a == "--" {
			break
		}
	}
	switch len(positional) {
	case 0:
		fmt.Fprint(stderr, legacyUsage)
		fmt.Fprintf(stderr, "%s: error: the following arguments are required: DSN\n", legacyProg)
		return ExitFailed
	case 1:
		dsn = positional[0]
	default:
		fmt.Fprint(stderr, legacyUsage)
		fmt.Fprintf(stderr, "%s: error: expected one DSN, got %d arguments\n", legacyProg, len(positional))
		fmt.Fprintf(stderr, "%s: hint: quote the DSN if it contains spaces or shell characters such as & or ?\n", legacyProg)
		return ExitFailed
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tok, err := replaceLegacyToken(ctx, dsn)
	if err != nil {
		return report(stderr, legacyProg, dsn, err)
	}
	fmt.Fprintf(stdout, "The new authentication token is\n\n    %s\n\nUpdate the token in the configuration file of every script that calls the web hooks.\n", tok)
	return ExitOK
}

// replaceLegacyToken opens the store at dsn, makes sure its tables exist,
// and replaces GroupServer's token with a new one.
func replaceLegacyToken(ctx context.Context, dsn string) (string, error) {
	st, err := openStore(ctx, dsn, nil)
	if err != nil {
		return "", err
	}
	defer st.Close()

	tok, err := token.Generate()
	if err != nil {
		return "", err
	}
	if err := st.ReplaceLegacyToken(ctx, tok); err != nil {
		return "", err
	}
	return tok, nil
}

// openStore opens the store at dsn and prepares its schema. A SQLite store
// is migrated, because the file is ours; a PostgreSQL database may be
// GroupServer's, so its schema is only checked, and the hint says how to
// create missing tables.
func openStore(ctx context.Context, dsn string, opts []store.Option) (*store.Store, error) {
	st, err := store.Open(ctx, dsn, opts...)
	if err != nil {
		return nil, err
	}
	if st.Backend() == store.SQLite {
		err = st.Migrate(ctx)
	} else {
		err = st.CheckSchema(ctx)
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			err = &exitError{code: ExitFailed, err: err,
				hint: "create the tables with: gs-auth-token migrate --dsn '" + store.Redact(dsn) + "'"}
		}
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
