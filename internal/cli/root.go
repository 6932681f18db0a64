package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gs-auth-token/gs-auth-token/store"
)

const prog = "gs-auth-token"

// DefaultDSN is the store gs-auth-token uses when neither --dsn nor
// GS_AUTH_TOKEN_DSN names one: a SQLite file in the working directory.
const DefaultDSN = "./gs-auth-token.db"

// DSNEnv is the environment variable that names the store.
const DSNEnv = "GS_AUTH_TOKEN_DSN"

// app holds what every gs-auth-token subcommand shares.
type app struct {
	dsnFlag string
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
}

// dsn returns the store to use: --dsn, then GS_AUTH_TOKEN_DSN, then
// [DefaultDSN].
func (a *app) dsn() string {
	if a.dsnFlag != "" {
		return a.dsnFlag
	}
	if v := a.getenv(DSNEnv); v != "" {
		return v
	}
	return DefaultDSN
}

// Main runs gs-auth-token with the given arguments (without the program
// name) and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	secrets := secretsIn(args, os.Getenv)
	stdout, stderr = newScrubWriter(stdout, secrets), newScrubWriter(stderr, secrets)
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) || !isRunError(err) {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		fmt.Fprintf(stderr, "%s: hint: run '%s --help' for usage\n", prog, cmd.CommandPath())
		return ExitInvalid
	}
	return report(stderr, prog, a.dsn(), err)
}

// usageError is a wrong argument or flag value.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// runError marks an error returned by a command's work, as opposed to one
// from cobra's argument parsing.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func isRunError(err error) bool {
	var re *runError
	return errors.As(err, &re)
}

// run adapts a command body so that its errors are reported with their exit
// status and hint.
func run(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			var ue *usageError
			if errors.As(err, &ue) {
				return err
			}
			return &runError{err: err}
		}
		return nil
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   prog,
		Short: "Create, rotate and audit the tokens that authenticate web hooks, and serve hooks",
		Long: `gs-auth-token manages the authentication tokens of JSON web hooks and serves
hooks that check them. It works on GroupServer's PostgreSQL database or on a
SQLite file.

The store is chosen by --dsn, then by the GS_AUTH_TOKEN_DSN environment
variable, then ./gs-auth-token.db. A PostgreSQL password may be left out of
the DSN and given in PGPASSWORD or ~/.pgpass instead.

Exit status: 0 success; 1 a usage error or an unusable DSN; 2 the store
could not be reached, read or written, or a token was not found or is
already active.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.dsnFlag, "dsn", "",
		"data source name: postgresql://USER@HOST:PORT/DB or sqlite:PATH (default $"+DSNEnv+", then "+DefaultDSN+")")
	root.AddCommand(a.createCommand(), a.rotateCommand(), a.revokeCommand(), a.listCommand(),
		a.migrateCommand(), a.serveCommand(), a.auditCommand())
	return root
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the database tables",
		Long: `migrate creates the tables gs-auth-token needs, where absent, and brings
them up to the latest schema version. Existing GroupServer tables and rows
are left as they are. Running it again changes nothing.`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := store.Open(ctx, a.dsn())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				return err
			}
			current, _, err := st.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: schema of %s is at version %d\n", prog, st.DSN(), current)
			return nil
		}),
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{msg: fmt.Sprintf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}
