// Package faults runs gs-auth-token serve against PostgreSQL through a
// proxy that the tests cut and restore, and checks that the service fails
// closed during an outage, recovers by itself, and loses no audit event.
package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/internal/testproxy"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// bins holds the paths of the commands that TestMain builds.
var bins testbin.Binaries

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &bins))
}

// staleness is the cache bound the server runs with in these tests.
const staleness = 2 * time.Second

// env is a server reaching its own PostgreSQL schema through a proxy.
type env struct {
	t         *testing.T
	direct    string // DSN without the proxy, for the test's own changes
	proxied   string // DSN through the proxy, for the server
	proxy     *testproxy.Proxy
	admin     *store.Store
	spool     string
	appName   string
	server    *exec.Cmd
	addr      string
	stderr    *syncBuffer
	serverOut sync.WaitGroup
}

func newEnv(t *testing.T) *env {
	t.Helper()
	direct := testdb.Postgres(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	appName := fmt.Sprintf("gsat_faults_%d", time.Now().UnixNano())
	proxied := testdb.WithParam(u.String(), "application_name", appName)

	admin, err := store.Open(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, direct: direct, proxied: proxied, proxy: proxy, admin: admin,
		spool: filepath.Join(t.TempDir(), "audit.spool"), appName: appName}
}

var addrPattern = regexp.MustCompile(`address=http://(127\.0\.0\.1:\d+)`)

// start runs serve and waits for its address.
func (e *env) start() {
	e.t.Helper()
	cmd := exec.Command(bins.Tool, "serve", "--listen", "127.0.0.1:0", "--dsn", e.proxied,
		"--cache-staleness", staleness.String(), "--audit-spool", e.spool, "--throttle-failures", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.server = cmd
	e.stderr = &syncBuffer{}
	found := make(chan string, 1)
	e.serverOut.Add(1)
	go func() {
		defer e.serverOut.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			e.stderr.WriteLine(sc.Text())
			if m := addrPattern.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case e.addr = <-found:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		e.t.Fatalf("serve did not start; stderr:\n%s", e.stderr.String())
	}
	e.t.Cleanup(e.stop)
}

// stop sends SIGTERM and waits for the server to exit.
func (e *env) stop() {
	if e.server == nil || e.server.ProcessState != nil {
		return
	}
	e.server.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.server.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("serve exited with %v; stderr:\n%s", err, e.stderr.String())
		}
	case <-time.After(30 * time.Second):
		e.server.Process.Kill()
		e.t.Errorf("serve did not stop within 30 s of SIGTERM")
	}
	e.serverOut.Wait()
}

// post sends tok to the example hook and returns the status.
func (e *env) post(tok string) int {
	e.t.Helper()
	resp, err := http.PostForm("http://"+e.addr+"/some-hook.json", url.Values{"token": {tok}, "some": {""}})
	if err != nil {
		e.t.Fatalf("posting to the hook failed: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) create(name string) string {
	e.t.Helper()
	tok, _, err := e.admin.CreateToken(context.Background(), name, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// waitStatus polls until tok gets want, for at most limit, and returns how
// long it took.
func (e *env) waitStatus(tok string, want int, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if e.post(tok) == want {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// auditRows counts the audit events of the hook page.
func (e *env) auditRows() int {
	e.t.Helper()
	events, err := e.admin.AuditEvents(context.Background(), store.AuditQuery{Limit: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range events {
		if strings.HasSuffix(ev.InstanceDatum, "/some-hook.json") {
			n++
		}
	}
	return n
}

func TestOutageFailsClosedAndRecovers(t *testing.T) {
	e := newEnv(t)
	valid := e.create("valid")
	revoked := e.create("revoked")
	if _, err := e.admin.RevokeToken(context.Background(), "revoked", ""); err != nil {
		t.Fatal(err)
	}
	e.start()
	if got := e.post(valid); got != http.StatusOK {
		t.Fatalf("valid token before the outage: status %d, want 200", got)
	}

	e.proxy.Cut()
	cutAt := time.Now()
	fresh := e.create("made-during-outage")
	if got := e.post(valid); got != http.StatusOK && time.Since(cutAt) < staleness/2 {
		t.Errorf("valid cached token during the outage: status %d, want 200", got)
	}
	unauthorized := 0
	if got := e.post(revoked); got != http.StatusUnauthorized {
		t.Errorf("revoked token during the outage: status %d, want 401", got)
	} else {
		unauthorized++
	}
	if got := e.post(fresh); got != http.StatusServiceUnavailable {
		t.Errorf("uncached token during the outage: status %d, want 503", got)
	}
	for i := 0; i < 5; i++ {
		if got := e.post("wrong-token-during-outage"); got == http.StatusUnauthorized {
			unauthorized++
		}
	}

	// Past the staleness bound the copy is not trusted: fail closed.
	time.Sleep(time.Until(cutAt.Add(staleness + 500*time.Millisecond)))
	if got := e.post(valid); got != http.StatusServiceUnavailable {
		t.Errorf("valid token past the staleness bound: status %d, want 503", got)
	}
	switch got := e.post(revoked); got {
	case http.StatusOK:
		t.Errorf("revoked token past the staleness bound: status 200")
	case http.StatusUnauthorized:
		unauthorized++
	}

	e.proxy.Restore()
	if took, ok := e.waitStatus(valid, http.StatusOK, 2*time.Second); !ok {
		t.Errorf("valid token not accepted within 2 s of the database's return (waited %s)", took)
	}
	if got := e.post(fresh); got != http.StatusOK {
		t.Errorf("token made during the outage, after recovery: status %d, want 200", got)
	}

	// Every 401 of the outage is audited once, after the spool's replay.
	deadline := time.Now().Add(10 * time.Second)
	for e.auditRows() < unauthorized && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	e.stop()
	if got := e.auditRows(); got != unauthorized {
		t.Errorf("audit rows = %d, want %d (one per 401 of the outage, none lost or doubled)", got, unauthorized)
	}
}

func TestTerminatedConnectionsRecover(t *testing.T) {
	e := newEnv(t)
	tok := e.create("survivor")
	e.start()
	if got := e.post(tok); got != http.StatusOK {
		t.Fatalf("before termination: status %d, want 200", got)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.BaseDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
		e.appName).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no connection of the server was found to terminate")
	}

	if took, ok := e.waitStatus(tok, http.StatusOK, 2*time.Second); !ok {
		t.Errorf("not serving within 2 s of the termination (waited %s)", took)
	}
	// A revocation must still reach the server, so its listener has come
	// back (or the periodic reload bounds the delay).
	if _, err := e.admin.RevokeToken(ctx, "survivor", ""); err != nil {
		t.Fatal(err)
	}
	if took, ok := e.waitStatus(tok, http.StatusUnauthorized, staleness+time.Second); !ok {
		t.Errorf("revocation not seen within the staleness bound after the termination (waited %s)", took)
	}
}

func TestRestartDuringOutageKeepsAuditEvents(t *testing.T) {
	e := newEnv(t)
	e.create("anything")
	e.start()

	e.proxy.Cut()
	failures := 0
	for i := 0; i < 20; i++ {
		if e.post("wrong-token-before-restart") == http.StatusUnauthorized {
			failures++
		}
	}
	e.stop()
	if rows := e.auditRows(); rows != 0 {
		t.Fatalf("audit rows while cut = %d, want 0", rows)
	}

	e.proxy.Restore()
	e.server = nil
	e.start()
	deadline := time.Now().Add(10 * time.Second)
	for e.auditRows() < failures && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.auditRows(); got != failures {
		t.Errorf("audit rows after the restart = %d, want %d", got, failures)
	}
}

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) WriteLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line)
	s.b.WriteByte('\n')
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
