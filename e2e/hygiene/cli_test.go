package hygiene

import (
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/internal/testproxy"
)

// dsnCase is a DSN with a password that the commands cannot use.
type dsnCase struct {
	name string
	// dsn returns the DSN, made afresh for each command.
	dsn func(t *testing.T) string
	// env is added to the environment of each command.
	env []string
	// viaEnv passes the DSN in GS_AUTH_TOKEN_DSN instead of on the
	// command line.
	viaEnv bool
	// succeeds names the commands that work with this DSN.
	succeeds map[string]bool
	// extra are secrets besides the canary password, such as its
	// percent-encoded form.
	extra []string
}

// fixed returns a dsn function for a DSN that does not change.
func fixed(dsn string) func(t *testing.T) string {
	return func(t *testing.T) string { return dsn }
}

// localDSNCases are DSNs that need no database server: every command
// fails on them before or while connecting to a closed loopback port.
func localDSNCases() []dsnCase {
	return []dsnCase{
		{name: "closed port", dsn: fixed("postgres://u:" + password + "@127.0.0.1:1/db?sslmode=disable")},
		{name: "closed port via env", dsn: fixed("postgres://u:" + password + "@127.0.0.1:1/db?sslmode=disable"), viaEnv: true},
		{name: "PGPASSWORD closed port", dsn: fixed("postgres://u@127.0.0.1:1/db?sslmode=disable"), env: []string{"PGPASSWORD=" + password}},
		{name: "bad percent-encoding", dsn: fixed("postgres://u:" + password + "%ZZ@127.0.0.1/db")},
		{name: "encoded password", dsn: fixed("postgres://u:s3cr3t%2Dcanary%2Dpw@127.0.0.1:1/db?sslmode=disable"),
			extra: []string{"s3cr3t%2Dcanary%2Dpw"}},
		{name: "at sign in password", dsn: fixed("postgres://u:" + password + "@x@127.0.0.1:1/db?sslmode=disable")},
		{name: "mysql scheme", dsn: fixed("mysql://u:" + password + "@127.0.0.1/db")},
		{name: "password parameter", dsn: fixed("postgres://u@127.0.0.1:1/db?sslmode=disable&password=" + password)},
		{name: "keyword-value", dsn: fixed("host=127.0.0.1 port=1 user=u password=" + password)},
		{name: "bad port", dsn: fixed("postgres://u:" + password + "@127.0.0.1:notaport/db")},
		{name: "bad sslmode", dsn: fixed("postgres://u:" + password + "@127.0.0.1:1/db?sslmode=bogus")},
		{name: "no slashes", dsn: fixed("postgresql:u:" + password + "@127.0.0.1/db")},
		{name: "trailing newline", dsn: fixed("postgres://u:" + password + "@127.0.0.1:1/db\n")},
	}
}

// serverDSNCases are DSNs on the PostgreSQL server of
// GS_AUTH_TOKEN_TEST_DSN that fail there. They skip without it.
func serverDSNCases() []dsnCase {
	// rewrite returns the base DSN with user, password, host and database
	// replaced, keeping its query.
	rewrite := func(t *testing.T, user, pw, host, db string) string {
		u, err := url.Parse(testdb.BaseDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		if pw == "" {
			u.User = url.User(user)
		} else {
			u.User = url.UserPassword(user, pw)
		}
		if host != "" {
			u.Host = host
		}
		if db != "" {
			u.Path = "/" + db
		}
		return u.String()
	}
	return []dsnCase{
		{name: "missing database", dsn: func(t *testing.T) string {
			return rewrite(t, "postgres", password, "", "gsat_missing_"+randomHex(t, 6))
		}},
		{name: "PGPASSWORD missing database", env: []string{"PGPASSWORD=" + password}, dsn: func(t *testing.T) string {
			return rewrite(t, "postgres", "", "", "gsat_missing_"+randomHex(t, 6))
		}},
		{name: "unknown role", dsn: func(t *testing.T) string {
			return rewrite(t, "gsat_norole_"+randomHex(t, 6), password, "", "")
		}},
		{name: "cut proxy", dsn: func(t *testing.T) string {
			u, err := url.Parse(testdb.BaseDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			proxy, err := testproxy.Start(u.Host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { proxy.Close() })
			proxy.Cut()
			return rewrite(t, "postgres", password, proxy.Addr(), "")
		}},
		{name: "no tables", succeeds: map[string]bool{"migrate": true}, dsn: func(t *testing.T) string {
			return withPassword(t, testdb.Postgres(t))
		}},
	}
}

// cliCommand is one command run against a DSN.
type cliCommand struct {
	name string
	bin  string
	// args builds the arguments; dsnArgs is "--dsn DSN", or nothing when
	// the DSN comes from the environment.
	args func(dsn string, dsnArgs []string) []string
}

func cliCommands() []cliCommand {
	sub := func(words ...string) func(string, []string) []string {
		return func(_ string, dsnArgs []string) []string {
			return append(append([]string(nil), words...), dsnArgs...)
		}
	}
	return []cliCommand{
		{"gs_auth_token_create", bins.Create, func(dsn string, dsnArgs []string) []string {
			if dsnArgs == nil {
				return nil
			}
			return []string{dsn}
		}},
		{"create", bins.Tool, sub("create", "--name", "hygiene")},
		{"list", bins.Tool, sub("list")},
		{"revoke", bins.Tool, sub("revoke", "hygiene")},
		{"rotate", bins.Tool, sub("rotate", "hygiene", "--grace", "0")},
		{"audit", bins.Tool, sub("audit")},
		{"migrate", bins.Tool, sub("migrate")},
		{"serve", bins.Tool, sub("serve", "--listen", "127.0.0.1:0", "--log-level", "debug")},
	}
}

func TestCLIErrors(t *testing.T) {
	for _, group := range []struct {
		name  string
		cases []dsnCase
	}{{"local", localDSNCases()}, {"server", serverDSNCases()}} {
		t.Run(group.name, func(t *testing.T) {
			for _, c := range group.cases {
				t.Run(c.name, func(t *testing.T) {
					testCLIErrors(t, c)
				})
			}
		})
	}
}

func testCLIErrors(t *testing.T, c dsnCase) {
	for _, cmd := range cliCommands() {
		t.Run(cmd.name, func(t *testing.T) {
			secrets := &secretSet{}
			secrets.add("DSN password", password, false)
			for _, e := range c.extra {
				secrets.add("DSN password as written", e, false)
			}
			dsn := c.dsn(t)
			env := append([]string(nil), c.env...)
			dsnArgs := []string{"--dsn", dsn}
			if c.viaEnv {
				env = append(env, "GS_AUTH_TOKEN_DSN="+dsn)
				dsnArgs = nil
			}

			got := run(t, t.TempDir(), env, cmd.bin, cmd.args(dsn, dsnArgs)...)
			if c.succeeds[cmd.name] && got.code != 0 {
				t.Errorf("exit status = %d, want 0; stderr: %s", got.code, got.stderr)
			}
			if !c.succeeds[cmd.name] && got.code == 0 {
				t.Errorf("exit status = 0, want a failure; stdout: %s", got.stdout)
			}
			if !c.succeeds[cmd.name] && !strings.Contains(got.stderr, ": error: ") {
				t.Errorf("standard error has no error message: %q", got.stderr)
			}
			secrets.check(t, "standard output", got.stdout)
			secrets.check(t, "standard error", got.stderr)
		})
	}
}

// TestCLIStrayDSN gives the DSN where the commands expect something else,
// as a user who mixes up the two programs' syntax would: gs-auth-token
// takes --dsn, and gs_auth_token_create takes the DSN as its argument.
func TestCLIStrayDSN(t *testing.T) {
	dsn := "postgres://u:" + password + "@127.0.0.1:1/db?sslmode=disable"
	cases := []struct {
		name string
		bin  string
		args []string
	}{
		{"list argument", bins.Tool, []string{"list", dsn}},
		{"create argument", bins.Tool, []string{"create", dsn}},
		{"audit argument", bins.Tool, []string{"audit", dsn}},
		{"migrate argument", bins.Tool, []string{"migrate", dsn}},
		{"serve argument", bins.Tool, []string{"serve", "--listen", "127.0.0.1:0", dsn}},
		{"revoke name", bins.Tool, []string{"revoke", dsn}},
		{"rotate name", bins.Tool, []string{"rotate", dsn}},
		{"subcommand", bins.Tool, []string{dsn}},
		{"extra argument", bins.Tool, []string{"list", "--dsn", dsn, "extra"}},
		{"unknown flag", bins.Tool, []string{"--dsn=" + dsn, "list", "--bogus"}},
		{"misspelt flag", bins.Tool, []string{"list", "--dns", dsn}},
		{"legacy two arguments", bins.Create, []string{dsn, "extra"}},
		{"legacy --dsn", bins.Create, []string{"--dsn", dsn}},
		{"legacy --dsn=", bins.Create, []string{"--dsn=" + dsn}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			secrets := &secretSet{}
			secrets.add("DSN password", password, false)
			got := run(t, t.TempDir(), nil, c.bin, c.args...)
			if got.code == 0 {
				t.Errorf("exit status = 0, want a failure; stdout: %s", got.stdout)
			}
			if !strings.Contains(got.stderr, ": error: ") {
				t.Errorf("standard error has no error message: %q", got.stderr)
			}
			secrets.check(t, "standard output", got.stdout)
			secrets.check(t, "standard error", got.stderr)
		})
	}
}

// TestServeErrors makes serve fail after it has opened a PostgreSQL store
// whose DSN carries a password.
func TestServeErrors(t *testing.T) {
	s := newSuite(t)
	dsn := withPassword(t, testdb.Postgres(t))
	s.cliOK("migrate", "--dsn", dsn)
	s.newToken("valid token", "create", "--dsn", dsn, "--name", "hygiene")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	lockedSpool := filepath.Join(t.TempDir(), "audit.spool")
	holder := startServe(t, s.dir, nil, "--dsn", dsn, "--audit-spool", lockedSpool)

	cases := []struct {
		name string
		args []string
	}{
		{"listen in use", []string{"--listen", busy.Addr().String()}},
		{"metrics in use", []string{"--listen", "127.0.0.1:0", "--metrics-listen", busy.Addr().String()}},
		{"spool directory missing", []string{"--listen", "127.0.0.1:0", "--audit-spool", filepath.Join(t.TempDir(), "missing", "audit.spool")}},
		{"spool in use", []string{"--listen", "127.0.0.1:0", "--audit-spool", lockedSpool}},
		{"bad log level", []string{"--listen", "127.0.0.1:0", "--log-level", "loud"}},
		{"bad trusted proxy", []string{"--listen", "127.0.0.1:0", "--trusted-proxy", "nowhere"}},
		{"bad site id", []string{"--listen", "127.0.0.1:0", "--site-id", "a b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"serve", "--dsn", dsn, "--log-level", "debug"}, c.args...)
			got := run(t, s.dir, nil, bins.Tool, args...)
			if got.code == 0 {
				t.Errorf("exit status = 0, want a failure; stderr: %s", got.stderr)
			}
			if !strings.Contains(got.stderr, ": error: ") {
				t.Errorf("standard error has no error message: %q", got.stderr)
			}
			s.secrets.check(t, "standard output", got.stdout)
			s.secrets.check(t, "standard error", got.stderr)
		})
	}

	holder.stop(t)
	s.record("standard error of the serve that locks the spool", holder.stderr.String())
	s.record("standard output of the serve that locks the spool", holder.stdout.String())
	t.Run("leaks", func(t *testing.T) {
		s.checkOutputs(t)
	})
}

// TestCLIStoreErrors makes each command fail after it has opened a store,
// whose PostgreSQL DSN carries a password, on a token that exists.
func TestCLIStoreErrors(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := newSuite(t)
			dsn := b.newDSN(t)
			s.cliOK("migrate", "--dsn", dsn)
			s.newToken("valid token", "create", "--dsn", dsn, "--name", "hygiene")

			cases := []struct {
				name string
				args []string
			}{
				{"create duplicate", []string{"create", "--name", "hygiene"}},
				{"create bad name", []string{"create", "--name", "bad name!"}},
				{"create bad expiry", []string{"create", "--name", "other", "--expires", "soon"}},
				{"rotate unknown", []string{"rotate", "nosuch"}},
				{"rotate bad grace", []string{"rotate", "hygiene", "--grace", "-1s"}},
				{"revoke unknown", []string{"revoke", "nosuch"}},
				{"revoke legacy absent", []string{"revoke", "legacy"}},
				{"audit bad since", []string{"audit", "--since", "forever"}},
				{"audit bad limit", []string{"audit", "--limit", "0"}},
				{"list extra argument", []string{"list", "extra"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					got := s.cli(append(c.args, "--dsn", dsn)...)
					if got.code == 0 {
						t.Errorf("exit status = 0, want a failure; stdout: %s", got.stdout)
					}
					if !strings.Contains(got.stderr, ": error: ") {
						t.Errorf("standard error has no error message: %q", got.stderr)
					}
				})
			}
			s.cliOK("list", "--dsn", dsn)
			s.cliOK("audit", "--dsn", dsn)

			t.Run("leaks", func(t *testing.T) {
				for id, digest := range storedDigests(t, openDB(t, dsn)) {
					s.secrets.add("stored digest of token "+id, digest, true)
				}
				s.checkOutputs(t)
			})
		})
	}
}
