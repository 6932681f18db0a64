package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/fakepg"
	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// canary is the password in every DSN that can carry one, and in
// PGPASSWORD. No output may contain it.
const canary = "s3cr3t-canary"

const prefix = "gs_auth_token_create: "

// bins holds the paths of the commands that TestMain builds.
var bins testbin.Binaries

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &bins))
}

type result struct {
	code   int
	stdout string
	stderr string
}

// run runs the command in dir with args, in the clean environment of
// testbin.Run, with PGPASSWORD set to the canary and then extraEnv.
func run(t *testing.T, dir string, extraEnv []string, args ...string) result {
	t.Helper()
	r := testbin.Run(t, bins.Create, dir, append([]string{"PGPASSWORD=" + canary}, extraEnv...), args...)
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

func assertNoPassword(t *testing.T, res result) {
	t.Helper()
	if strings.Contains(res.stdout, canary) {
		t.Errorf("stdout contains the password:\n%s", res.stdout)
	}
	if strings.Contains(res.stderr, canary) {
		t.Errorf("stderr contains the password:\n%s", res.stderr)
	}
}

// tokenLine matches the indented line on which the token is printed.
var tokenLine = regexp.MustCompile(`(?m)^    ([0-9a-zA-Z]{32})$`)

// printedToken returns the token in stdout, failing t unless there is
// exactly one token line.
func printedToken(t *testing.T, stdout string) string {
	t.Helper()
	m := tokenLine.FindAllStringSubmatch(stdout, -1)
	if len(m) != 1 {
		t.Fatalf("stdout has %d token lines, expected 1:\n%s", len(m), stdout)
	}
	return m[0][1]
}

// verify checks tok against the store at dsn.
func verify(t *testing.T, dsn, tok string) error {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening %s failed: %v", store.Redact(dsn), err)
	}
	defer st.Close()
	_, err = st.Verify(ctx, "", tok)
	return err
}

// withUser returns the PostgreSQL URL dsn with the given user and password.
func withUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s failed: %v", dsn, err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func TestHelp(t *testing.T) {
	for _, flag := range []string{"-h", "--help"} {
		t.Run(flag, func(t *testing.T) {
			res := run(t, t.TempDir(), nil, flag)

			if res.code != 0 {
				t.Errorf("exit status = %d, expected 0", res.code)
			}
			if res.stderr != "" {
				t.Errorf("stderr = %q, expected nothing", res.stderr)
			}
			for _, want := range []string{
				"usage: gs_auth_token_create [-h] DSN",
				"Create a new authentication token",
				"positional arguments:",
				"-h, --help",
				"PGPASSWORD",
				"WARNING: every script that uses the old token stops working",
			} {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("help does not contain %q:\n%s", want, res.stdout)
				}
			}
		})
	}
}

func TestCreateSQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.db")
	dsn := "sqlite:" + path

	first := run(t, dir, nil, dsn)

	if first.code != 0 {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", first.code, first.stderr)
	}
	if first.stderr != "" {
		t.Errorf("stderr = %q, expected nothing", first.stderr)
	}
	tok := printedToken(t, first.stdout)
	if bad := strings.Trim(tok, token.Alphabet); bad != "" {
		t.Errorf("token contains %q, outside the base-62 alphabet", bad)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the SQLite file was not created: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("the SQLite file has mode %#o, expected 0600", perm)
	}
	if err := verify(t, dsn, tok); err != nil {
		t.Errorf("Verify(printed token) failed: %v", err)
	}

	second := run(t, dir, nil, dsn)

	if second.code != 0 {
		t.Fatalf("second run: exit status = %d, expected 0; stderr:\n%s", second.code, second.stderr)
	}
	newTok := printedToken(t, second.stdout)
	if newTok == tok {
		t.Errorf("second run printed the same token as the first")
	}
	if err := verify(t, dsn, newTok); err != nil {
		t.Errorf("Verify(second token) failed: %v", err)
	}
	if err := verify(t, dsn, tok); !errors.Is(err, token.ErrMismatch) {
		t.Errorf("Verify(first token) after the second run = %v, expected a token mismatch", err)
	}
}

func TestCreateSQLiteDSNForms(t *testing.T) {
	tests := []struct {
		name string
		dsn  func(dir string) string
		file string
	}{
		{"four slashes", func(dir string) string { return "sqlite:///" + filepath.Join(dir, "a.db") }, "a.db"},
		{"file scheme", func(dir string) string { return "file:" + filepath.Join(dir, "b.db") }, "b.db"},
		{"bare relative path", func(string) string { return "c.db" }, "c.db"},
		{"relative sqlite path", func(string) string { return "sqlite:d.db" }, "d.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()

			res := run(t, dir, nil, tt.dsn(dir))

			if res.code != 0 {
				t.Fatalf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
			}
			tok := printedToken(t, res.stdout)
			path := filepath.Join(dir, tt.file)
			if err := verify(t, "sqlite:"+path, tok); err != nil {
				t.Errorf("Verify(printed token) in %s failed: %v", path, err)
			}
		})
	}
}

func TestCreatePostgres(t *testing.T) {
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

	res := run(t, t.TempDir(), nil, withUser(t, dsn, "postgres", canary))

	if res.code != 0 {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
	}
	assertNoPassword(t, res)
	tok := printedToken(t, res.stdout)
	if _, err := st.Verify(ctx, "", tok); err != nil {
		t.Errorf("Verify(printed token) failed: %v", err)
	}
}

// readOnlyFile returns a migrated SQLite file with a token, made read-only.
func readOnlyFile(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.db")
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

// sqliteWithTable returns a SQLite file that contains only the table made
// by create.
func sqliteWithTable(t *testing.T, create string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(create); err != nil {
		t.Fatalf("executing %q failed: %v", create, err)
	}
	return path
}

// postgresWithTable returns the DSN of a PostgreSQL schema that contains
// only the table made by create.
func postgresWithTable(t *testing.T, create string) string {
	t.Helper()
	dsn := testdb.Postgres(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(create); err != nil {
		t.Fatalf("executing %q failed: %v", create, err)
	}
	return dsn
}

func TestCreateErrors(t *testing.T) {
	const noValueTable = "CREATE TABLE option (component_id TEXT, option_id TEXT, site_id TEXT, group_id TEXT)"
	tests := []struct {
		name       string
		args       func(t *testing.T) []string
		env        []string
		wantCode   int
		wantStderr []string
	}{
		{"empty DSN", func(*testing.T) []string { return []string{""} }, nil, 1,
			[]string{"error: invalid DSN: the DSN is empty", "hint: give a DSN"}},
		{"whitespace DSN", func(*testing.T) []string { return []string{"  "} }, nil, 1,
			[]string{"the DSN is empty"}},
		{"mysql", func(*testing.T) []string { return []string{"mysql://x"} }, nil, 1,
			[]string{`unknown scheme "mysql"`}},
		{"mysql with password", func(*testing.T) []string { return []string{"mysql://gs:" + canary + "@127.0.0.1/gs"} }, nil, 1,
			[]string{`unknown scheme "mysql"`}},
		{"postgresql one slash", func(*testing.T) []string { return []string{"postgresql:/gs:" + canary + "@127.0.0.1/gs"} }, nil, 1,
			[]string{"malformed PostgreSQL URL"}},
		{"bad percent-encoding", func(*testing.T) []string { return []string{"postgres://gs:" + canary + "%ZZ@127.0.0.1/gs"} }, nil, 1,
			[]string{"invalid percent-encoding", "hint: percent-encode"}},
		{"bad port", func(*testing.T) []string { return []string{"postgres://gs:" + canary + "@127.0.0.1:99999/gs"} }, nil, 1,
			[]string{"invalid PostgreSQL URL"}},
		{"keyword=value", func(*testing.T) []string { return []string{"host=127.0.0.1 user=gs password=" + canary + " dbname=gs"} }, nil, 1,
			[]string{"keyword=value connection strings are not supported"}},
		{"sqlite query", func(*testing.T) []string { return []string{"sqlite:tokens.db?mode=ro"} }, nil, 1,
			[]string{"no query parameters"}},
		{"closed port", func(*testing.T) []string {
			return []string{"postgres://gs:" + canary + "@127.0.0.1:1/gs?sslmode=disable&connect_timeout=5"}
		}, nil, 2, []string{"cannot reach the server", "hint: check the host and port"}},
		{"missing database", func(t *testing.T) []string {
			u, err := url.Parse(withUser(t, testdb.BaseDSN(t), "postgres", canary))
			if err != nil {
				t.Fatal(err)
			}
			u.Path = "/gsat_no_such_database"
			return []string{u.String()}
		}, nil, 2, []string{`database "gsat_no_such_database" does not exist`, "hint: create the database first"}},
		{"unknown role", func(t *testing.T) []string {
			return []string{withUser(t, testdb.BaseDSN(t), "gsat_no_such_role", canary)}
		}, nil, 2, []string{`role "gsat_no_such_role" does not exist`}},
		{"directory", func(t *testing.T) []string { return []string{"sqlite:" + t.TempDir()} }, nil, 2,
			[]string{"is a directory, not a SQLite file", "hint: name a file inside it"}},
		{"missing parent directory", func(t *testing.T) []string {
			return []string{"sqlite:" + filepath.Join(t.TempDir(), "missing", "tokens.db")}
		}, nil, 2, []string{"no such file or directory", "hint: check that the directory"}},
		{"read-only file", func(t *testing.T) []string { return []string{"sqlite:" + readOnlyFile(t)} }, nil, 2,
			[]string{"readonly database", "hint: the SQLite file is read-only"}},
		{"not a database", func(t *testing.T) []string {
			path := filepath.Join(t.TempDir(), "tokens.db")
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 100), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"sqlite:" + path}
		}, nil, 2, []string{"file is not a database"}},
		{"sqlite option table of unexpected shape", func(t *testing.T) []string {
			return []string{"sqlite:" + sqliteWithTable(t, noValueTable)}
		}, nil, 2, []string{"unexpected database schema", "table option must have the columns"}},
		{"postgres option table of unexpected shape", func(t *testing.T) []string {
			return []string{withUser(t, postgresWithTable(t, noValueTable), "postgres", canary)}
		}, nil, 2, []string{"unexpected database schema", "table option must have the columns"}},
		{"postgres without tables", func(t *testing.T) []string {
			return []string{withUser(t, testdb.Postgres(t), "postgres", canary)}
		}, nil, 2, []string{"hint: create the tables with: gs-auth-token migrate --dsn 'postgres://postgres:xxxxx@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args(t)

			res := run(t, t.TempDir(), tt.env, args...)

			if res.code != tt.wantCode {
				t.Errorf("exit status = %d, expected %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, expected nothing", res.stdout)
			}
			assertNoPassword(t, res)
			if !strings.HasPrefix(res.stderr, prefix+"error: ") {
				t.Errorf("stderr does not start with %q:\n%s", prefix+"error: ", res.stderr)
			}
			for _, line := range strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n") {
				if !strings.HasPrefix(line, prefix) {
					t.Errorf("stderr line %q does not start with %q", line, prefix)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, res.stderr)
				}
			}
		})
	}
}

func TestCreateReadOnlyKeepsToken(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.db")
	dsn := "sqlite:" + path
	first := run(t, t.TempDir(), nil, dsn)
	if first.code != 0 {
		t.Fatalf("first run: exit status = %d, expected 0; stderr:\n%s", first.code, first.stderr)
	}
	tok := printedToken(t, first.stdout)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}

	second := run(t, t.TempDir(), nil, dsn)

	if second.code != 2 {
		t.Errorf("exit status on a read-only file = %d, expected 2", second.code)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Verify(ctx, "", tok); err != nil {
		t.Errorf("Verify(first token) after the failed run failed: %v", err)
	}
}

func TestCreateUsageErrors(t *testing.T) {
	dsn := "sqlite:tokens.db"
	tests := []struct {
		name      string
		args      []string
		wantError string
	}{
		{"missing argument", nil, "the following arguments are required: DSN"},
		{"extra arguments", []string{dsn, dsn}, "expected one DSN, got 2 arguments"},
		{"unquoted ampersand", []string{"postgres://gs@127.0.0.1/gs?sslmode=disable", "connect_timeout=5"}, "expected one DSN, got 2 arguments"},
		{"unknown option", []string{"--verbose", dsn}, `unrecognized argument "--verbose"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()

			res := run(t, dir, nil, tt.args...)

			if res.code != 2 {
				t.Errorf("exit status = %d, expected 2", res.code)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, expected nothing", res.stdout)
			}
			if !strings.HasPrefix(res.stderr, "usage: gs_auth_token_create [-h] DSN\n") {
				t.Errorf("stderr does not start with the usage line:\n%s", res.stderr)
			}
			if !strings.Contains(res.stderr, prefix+"error: "+tt.wantError) {
				t.Errorf("stderr does not contain %q:\n%s", prefix+"error: "+tt.wantError, res.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "tokens.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a usage error created tokens.db (stat: %v)", err)
			}
		})
	}
}

func TestCreateWrongPassword(t *testing.T) {
	tests := []struct {
		name     string
		echo     bool
		userinfo string
	}{
		{"password in DSN", false, "gs:" + canary},
		{"password from PGPASSWORD", false, "gs"},
		{"server echoes password", true, "gs:" + canary},
		{"server echoes PGPASSWORD", true, "gs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := fakepg.Start(t, tt.echo)
			dsn := "postgres://" + tt.userinfo + "@" + server.Addr + "/groupserver?sslmode=disable"

			res := run(t, t.TempDir(), nil, dsn)

			if got := server.Received(); len(got) == 0 || got[0] != canary {
				t.Errorf("fake server received passwords %q, expected the client to send %q", got, canary)
			}
			if res.code != 2 {
				t.Errorf("exit status = %d, expected 2; stderr:\n%s", res.code, res.stderr)
			}
			assertNoPassword(t, res)
			if !strings.Contains(res.stderr, prefix+`error: connect to postgres://gs`) {
				t.Errorf("stderr does not say connecting failed:\n%s", res.stderr)
			}
			if !strings.Contains(res.stderr, `password authentication failed for user "gs"`) {
				t.Errorf("stderr does not give the server's message:\n%s", res.stderr)
			}
			if !strings.Contains(res.stderr, prefix+"hint: check the user name and password") {
				t.Errorf("stderr has no hint to check the password:\n%s", res.stderr)
			}
		})
	}
}
