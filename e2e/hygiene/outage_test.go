package hygiene

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/internal/testproxy"
)

// outageStaleness is the --cache-staleness of the server in the outage
// test, short so that it fails closed soon after the cut.
const outageStaleness = 2 * time.Second

// TestDatabaseDown runs serve through a proxy to PostgreSQL, with JSON
// logs at debug level and the password in the DSN or in PGPASSWORD. It
// cuts the proxy and sends requests, so that serve logs every error of an
// unreachable database and responds to each request.
func TestDatabaseDown(t *testing.T) {
	cases := []struct {
		name string
		// inDSN puts the password in the DSN of serve, and otherwise in
		// its PGPASSWORD.
		inDSN bool
	}{
		{"password in DSN", true},
		{"PGPASSWORD", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testDatabaseDown(t, c.inDSN)
		})
	}
}

func testDatabaseDown(t *testing.T, inDSN bool) {
	base := testdb.Postgres(t)
	direct := withPassword(t, base)
	s := newSuite(t)
	s.cliOK("migrate", "--dsn", direct)
	valid := s.newToken("valid token", "create", "--dsn", direct, "--name", "outage-valid")
	revoked := s.newToken("revoked token", "create", "--dsn", direct, "--name", "outage-revoked")
	s.cliOK("revoke", "outage-revoked", "--dsn", direct)
	var wrong []string
	for i := range 3 {
		w := canary(t)
		wrong = append(wrong, w)
		s.secrets.add(fmt.Sprintf("wrong token %d", i), w, false)
		s.secrets.add(fmt.Sprintf("SHA-256 of wrong token %d", i), sha256Hex(w), true)
	}

	serveDSN, env := direct, []string(nil)
	if !inDSN {
		serveDSN, env = base, []string{"PGPASSWORD=" + password}
	}
	u, err := url.Parse(serveDSN)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	proxied := u.String()

	spool := filepath.Join(t.TempDir(), "audit.spool")
	srv := startServe(t, s.dir, env, "--dsn", proxied, "--log-level", "debug", "--log-format", "json",
		"--cache-staleness", outageStaleness.String(), "--audit-spool", spool, "--throttle-failures", "0")
	check := func(t *testing.T, where string, got exchange) {
		t.Helper()
		s.secrets.check(t, "body "+where, got.body)
		s.secrets.check(t, "headers "+where, got.headerText())
	}
	form := func(tok string) request { return post("/some-hook.json", "token="+url.QueryEscape(tok)+"&some") }

	t.Run("before cut", func(t *testing.T) {
		if got := srv.send(t, form(valid)); got.status != http.StatusOK {
			t.Errorf("valid token: status %d, want 200", got.status)
		}
		got := srv.send(t, form(wrong[0]))
		if got.status != http.StatusUnauthorized {
			t.Errorf("wrong token: status %d, want 401", got.status)
		}
		check(t, "of a wrong token", got)
	})

	proxy.Cut()
	fresh := s.newToken("token made during the outage", "create", "--dsn", direct, "--name", "outage-fresh")
	t.Run("cut", func(t *testing.T) {
		// Whether the copy of the tokens is still trusted depends on when
		// it was last loaded, so any of 401 and 503 may come.
		for _, tok := range []string{wrong[1], revoked, fresh} {
			got := srv.send(t, form(tok))
			check(t, "during the cut", got)
		}
		got := srv.send(t, post("/some-hook.json", "some", [2]string{"Authorization", "Bearer " + wrong[2]}))
		check(t, "of a bearer during the cut", got)
	})

	t.Run("stale", func(t *testing.T) {
		got, ok := waitStatus(t, srv, form(valid), http.StatusServiceUnavailable, 15*time.Second)
		if !ok {
			t.Fatalf("valid token did not get 503 within 15 s of the cut; last status %d", got.status)
		}
		check(t, "of the valid token", got)
		for _, req := range []request{form(wrong[1]), form(revoked), form(fresh), post("/some-hook.json", "some"),
			post("/gs-auth-token-check.json", "token="+wrong[2]+"&check")} {
			check(t, "while stale", srv.send(t, req))
		}
		if data, err := os.ReadFile(spool); err == nil {
			s.record("audit spool during the cut", string(data))
		}
		// Let the reloads and the listener fail a few more times.
		time.Sleep(outageStaleness)
	})

	proxy.Restore()
	t.Run("restored", func(t *testing.T) {
		if got, ok := waitStatus(t, srv, form(valid), http.StatusOK, 15*time.Second); !ok {
			t.Errorf("valid token not accepted within 15 s of the restore; last status %d", got.status)
		}
		got := srv.send(t, form(fresh))
		if got.status != http.StatusOK {
			t.Errorf("token made during the outage: status %d, want 200", got.status)
		}
		check(t, "of the token made during the outage", got)
	})

	srv.stop(t)
	s.record("standard output of serve", srv.stdout.String())
	s.record("standard error of serve", srv.stderr.String())
	if data, err := os.ReadFile(spool); err == nil {
		s.record("audit spool after the stop", string(data))
	}
	db := openDB(t, direct)
	for id, digest := range storedDigests(t, db) {
		s.secrets.add("stored digest of token "+id, digest, true)
	}
	for _, table := range []string{"audit_event", "gs_auth_token_use"} {
		s.record("table "+table, strings.Join(dumpTable(t, db, table), "\n"))
	}

	t.Run("leaks", func(t *testing.T) {
		s.checkOutputs(t)
	})
	t.Run("coverage", func(t *testing.T) {
		log := srv.stderr.String()
		for _, msg := range []string{
			"checking a token failed, so the request was refused",
			"reloading the cached tokens failed",
			"the listener for token changes lost its connection",
			"authentication token mismatch",
			"request without a token",
		} {
			if !strings.Contains(log, msg) {
				t.Errorf("serve's log has no line with %q", msg)
			}
		}
	})
}

// waitStatus sends req every 50 ms until it gets want, for at most limit,
// and returns the last response.
func waitStatus(t *testing.T, srv *server, req request, want int, limit time.Duration) (exchange, bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := srv.send(t, req)
		if got.status == want {
			return got, true
		}
		if time.Now().After(deadline) {
			return got, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
