package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// canary is the password in every DSN that can carry one, and in
// PGPASSWORD. No output may contain it.
const canary = "s3cr3t-canary"

const prefix = "gs-auth-token: "

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
	r := testbin.Run(t, bins.Tool, dir, append([]string{"PGPASSWORD=" + canary}, extraEnv...), args...)
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

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s failed: %v", path, err)
	}
	return err == nil
}

func TestHelp(t *testing.T) {
	res := run(t, t.TempDir(), nil, "--help")

	if res.code != 0 {
		t.Errorf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
	}
	for _, want := range []string{"--dsn", "./gs-auth-token.db", "GS_AUTH_TOKEN_DSN", "create", "migrate"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("help does not contain %q:\n%s", want, res.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantError string
	}{
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"unknown flag after command", []string{"migrate", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"argument to migrate", []string{"migrate", "extra"}, "takes no arguments"},
		{"flag without value", []string{"migrate", "--dsn"}, "flag needs an argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()

			res := run(t, dir, nil, tt.args...)

			if res.code != 1 {
				t.Errorf("exit status = %d, expected 1", res.code)
			}
			if !strings.HasPrefix(res.stderr, prefix+"error: ") {
				t.Errorf("stderr does not start with %q:\n%s", prefix+"error: ", res.stderr)
			}
			if !strings.Contains(res.stderr, tt.wantError) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantError, res.stderr)
			}
			if exists(t, filepath.Join(dir, "gs-auth-token.db")) {
				t.Errorf("a usage error created gs-auth-token.db")
			}
		})
	}
}

func TestCreatePrintsOnlyToken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "tokens.db")

	res := run(t, dir, nil, "--dsn", dsn, "create")

	if res.code != 0 {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
	}
	tok, ok := strings.CutSuffix(res.stdout, "\n")
	if !ok || tok == "" || strings.ContainsAny(tok, " \t\n") {
		t.Fatalf("stdout = %q, expected the token alone on one line", res.stdout)
	}
	if res.stderr == "" {
		t.Errorf("stderr is empty, expected an explanation")
	}
	if strings.Contains(res.stderr, tok) {
		t.Errorf("stderr contains the token:\n%s", res.stderr)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Verify(ctx, "", tok); err != nil {
		t.Errorf("Verify(printed token) failed: %v", err)
	}
}

func TestMigrateTwice(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "tokens.db")

	for i := 1; i <= 2; i++ {
		res := run(t, dir, nil, "migrate", "--dsn", dsn)

		if res.code != 0 {
			t.Fatalf("run %d: exit status = %d, expected 0; stderr:\n%s", i, res.code, res.stderr)
		}
		if !strings.Contains(res.stdout, "is at version") {
			t.Errorf("run %d: stdout does not give the schema version:\n%s", i, res.stdout)
		}
	}
}

func TestDSNPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		flag     bool
		env      bool
		wantFile string
	}{
		{"flag over environment", true, true, "flag.db"},
		{"flag alone", true, false, "flag.db"},
		{"environment alone", false, true, "env.db"},
		{"default", false, false, "gs-auth-token.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"migrate"}
			if tt.flag {
				args = append(args, "--dsn", "sqlite:flag.db")
			}
			var env []string
			if tt.env {
				env = append(env, "GS_AUTH_TOKEN_DSN=sqlite:env.db")
			}

			res := run(t, dir, env, args...)

			if res.code != 0 {
				t.Fatalf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
			}
			for _, file := range []string{"flag.db", "env.db", "gs-auth-token.db"} {
				got := exists(t, filepath.Join(dir, file))
				if want := file == tt.wantFile; got != want {
					t.Errorf("%s exists = %v, expected %v", file, got, want)
				}
			}
		})
	}
}

func TestEmptyEnvironmentDSNUsesDefault(t *testing.T) {
	dir := t.TempDir()

	res := run(t, dir, []string{"GS_AUTH_TOKEN_DSN="}, "migrate")

	if res.code != 0 {
		t.Fatalf("exit status = %d, expected 0; stderr:\n%s", res.code, res.stderr)
	}
	if !exists(t, filepath.Join(dir, "gs-auth-token.db")) {
		t.Errorf("gs-auth-token.db was not created")
	}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantText string
	}{
		{"invalid DSN flag", []string{"migrate", "--dsn", "mysql://gs:" + canary + "@127.0.0.1/gs"}, nil, 1, `unknown scheme "mysql"`},
		{"invalid DSN environment", []string{"create"}, []string{"GS_AUTH_TOKEN_DSN=postgresql:/gs:" + canary + "@127.0.0.1/gs"}, 1, "malformed PostgreSQL URL"},
		{"closed port", []string{"create", "--dsn", "postgres://gs:" + canary + "@127.0.0.1:1/gs?sslmode=disable&connect_timeout=5"}, nil, 2, "hint: check the host and port"},
		{"closed port from environment", []string{"migrate"}, []string{"GS_AUTH_TOKEN_DSN=postgres://gs:" + canary + "@127.0.0.1:1/gs?sslmode=disable"}, 2, "cannot reach the server"},
		{"closed port with PGPASSWORD", []string{"migrate", "--dsn", "postgres://gs@127.0.0.1:1/gs?sslmode=disable"}, nil, 2, "cannot reach the server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, t.TempDir(), tt.env, tt.args...)

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
			if !strings.Contains(res.stderr, tt.wantText) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantText, res.stderr)
			}
		})
	}
}
