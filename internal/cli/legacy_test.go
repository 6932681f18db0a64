package cli

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// tokenLine matches the line on which gs_auth_token_create prints the token.
var tokenLine = regexp.MustCompile(`(?m)^    ([0-9a-zA-Z]{32})$`)

func runCreateLegacy(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = CreateLegacy(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCreateLegacyArguments(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "tokens.db")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no arguments", nil, ExitFailed, "", "gs_auth_token_create: error: the following arguments are required: DSN\n"},
		{"two arguments", []string{dsn, dsn}, ExitFailed, "", "gs_auth_token_create: error: expected one DSN, got 2 arguments\n"},
		{"unknown short option", []string{"-x", dsn}, ExitFailed, "", `gs_auth_token_create: error: unrecognized argument "-x"`},
		{"unknown long option", []string{dsn, "--verbose"}, ExitFailed, "", `gs_auth_token_create: error: unrecognized argument "--verbose"`},
		{"short help", []string{"-h"}, ExitOK, "usage: gs_auth_token_create [-h] DSN\n", ""},
		{"long help", []string{"--help"}, ExitOK, "usage: gs_auth_token_create [-h] DSN\n", ""},
		{"help after DSN", []string{dsn, "-h"}, ExitOK, "usage: gs_auth_token_create [-h] DSN\n", ""},
		{"two arguments after double dash", []string{"--", dsn, dsn}, ExitFailed, "", "expected one DSN, got 2 arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCreateLegacy(tt.args...)

			if code != tt.wantCode {
				t.Errorf("exit status = %d, expected %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout = %q, expected it to contain %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, expected it to contain %q", stderr, tt.wantStderr)
			}
			if tt.wantCode == ExitFailed && !strings.HasPrefix(stderr, legacyUsage) {
				t.Errorf("stderr = %q, expected it to start with the usage line, as argparse does", stderr)
			}
		})
	}
}

func TestCreateLegacyDoubleDash(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "tokens.db")

	code, stdout, stderr := runCreateLegacy("--", dsn)

	if code != ExitOK {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", code, stderr)
	}
	if !tokenLine.MatchString(stdout) {
		t.Errorf("stdout has no token line:\n%s", stdout)
	}
}

// TestCreateLegacyDoubleDashOption checks that, as with argparse, an
// argument after "--" is the DSN even when it looks like an option: here a
// SQLite file named -h in the working directory.
func TestCreateLegacyDoubleDashOption(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)

	code, stdout, stderr := runCreateLegacy("--", "-h")

	if code != ExitOK {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout, "usage:") {
		t.Errorf("stdout contains the help, expected -h after -- to be the DSN:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "-h")); err != nil {
		t.Errorf("the SQLite file -h was not created: %v", err)
	}
}

func TestCreateLegacyReplacesToken(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "tokens.db")

	code, stdout, stderr := runCreateLegacy(dsn)
	if code != ExitOK {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", code, stderr)
	}
	m := tokenLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout has no token line:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, expected nothing", stderr)
	}

	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening the store failed: %v", err)
	}
	defer st.Close()
	if _, err := st.Verify(ctx, "", m[1]); err != nil {
		t.Errorf("Verify(printed token) failed: %v", err)
	}
}

// TestCreateLegacyPostgresWithoutTables checks that a PostgreSQL database
// without GroupServer's tables is not migrated behind the user's back, and
// that the hint names the command that creates them.
func TestCreateLegacyPostgresWithoutTables(t *testing.T) {
	u, err := url.Parse(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), canary)
	dsn := u.String()

	code, stdout, stderr := runCreateLegacy(dsn)

	if code != ExitFailed {
		t.Errorf("exit status = %d, expected %d", code, ExitFailed)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, expected nothing", stdout)
	}
	if !strings.Contains(stderr, "gs_auth_token_create: error: ") {
		t.Errorf("stderr has no error line:\n%s", stderr)
	}
	if !strings.Contains(stderr, "gs_auth_token_create: hint: create the tables with: gs-auth-token migrate --dsn '") {
		t.Errorf("stderr has no hint to run gs-auth-token migrate:\n%s", stderr)
	}
	if strings.Contains(stderr, canary) {
		t.Errorf("stderr contains the password:\n%s", stderr)
	}

	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.CheckSchema(context.Background())
	if !errors.Is(err, store.ErrSchema) {
		t.Errorf("CheckSchema after the failed run = %v, expected the tables to be still missing", err)
	}
}

func TestCreateLegacyPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceLegacyToken(ctx, old); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCreateLegacy(dsn)

	if code != ExitOK {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", code, stderr)
	}
	m := tokenLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout has no token line:\n%s", stdout)
	}
	if _, err := st.Verify(ctx, "", m[1]); err != nil {
		t.Errorf("Verify(printed token) failed: %v", err)
	}
	if _, err := st.Verify(ctx, "", old); !errors.Is(err, token.ErrMismatch) {
		t.Errorf("Verify(old token) = %v, expected a token mismatch", err)
	}
}
