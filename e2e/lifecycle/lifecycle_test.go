package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// lifecycleResult is what a finished command printed and its exit status.
type lifecycleResult struct {
	stdout, stderr string
	code           int
}

// lifecycleEnv returns the environment of the commands: this process's,
// without a store named by GS_AUTH_TOKEN_DSN, so that only --dsn counts.
func lifecycleEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GS_AUTH_TOKEN_DSN=") {
			env = append(env, kv)
		}
	}
	return env
}

// lifecycleRun runs binary with args and returns what it printed.
func lifecycleRun(t *testing.T, binary string, args ...string) lifecycleResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = lifecycleEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := lifecycleResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("running %s %q failed: %v", binary, args, err)
	}
	return res
}

// lifecycleCLI runs gs-auth-token on the store dsn.
func lifecycleCLI(t *testing.T, dsn string, args ...string) lifecycleResult {
	t.Helper()
	return lifecycleRun(t, bins.Tool, append([]string{"--dsn", dsn}, args...)...)
}

// lifecycleOK runs gs-auth-token on dsn and fails t unless it exits 0.
func lifecycleOK(t *testing.T, dsn string, args ...string) lifecycleResult {
	t.Helper()
	res := lifecycleCLI(t, dsn, args...)
	if res.code != 0 {
		t.Fatalf("gs-auth-token %s exited %d, expected 0; stderr:\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

// lifecycleNewToken runs a command that prints a new token alone on
// standard output, create or rotate, and returns the token.
func lifecycleNewToken(t *testing.T, dsn string, args ...string) string {
	t.Helper()
	res := lifecycleOK(t, dsn, args...)
	tok := strings.TrimSuffix(res.stdout, "\n")
	if len(tok) != 55 || !strings.HasPrefix(tok, "gst_") || strings.ContainsAny(tok, " \n") {
		t.Fatalf("gs-auth-token %s printed %q, expected one token of 55 characters starting with gst_", strings.Join(args, " "), res.stdout)
	}
	if strings.Contains(res.stderr, tok) {
		t.Errorf("gs-auth-token %s repeated the token on standard error", strings.Join(args, " "))
	}
	return tok
}

// lifecycleID returns the public id of a new-format token.
func lifecycleID(tok string) string { return tok[4:16] }

// lifecycleSecret returns the secret part of a new-format token.
func lifecycleSecret(tok string) string { return tok[17:49] }

// lifecycleBuffer is an io.Writer that is safe to read while a process
// writes to it.
type lifecycleBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lifecycleBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lifecycleBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lifecycleServer is a running "gs-auth-token serve".
type lifecycleServer struct {
	cmd    *exec.Cmd
	stdout *lifecycleBuffer
	stderr *lifecycleBuffer
	done   chan struct{}
	err    error // the result of Wait, once done is closed
	url    string
}

// lifecycleAddress finds the address in the "serving hooks" log line.
var lifecycleAddress = regexp.MustCompile(`msg="serving hooks" address=(http://127\.0\.0\.1:[0-9]+) `)

// lifecycleServe starts "gs-auth-token serve" on a free loopback port and
// waits, for at most 30 seconds, for its "serving hooks" log line. The
// process is killed when t ends, if it still runs.
func lifecycleServe(t *testing.T, dsn string, args ...string) *lifecycleServer {
	t.Helper()
	full := append([]string{"--dsn", dsn, "serve", "--listen", "127.0.0.1:0"}, args...)
	s := &lifecycleServer{cmd: exec.Command(bins.Tool, full...), stdout: &lifecycleBuffer{}, stderr: &lifecycleBuffer{}, done: make(chan struct{})}
	s.cmd.Env = lifecycleEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting serve failed: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("serve (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
		}
	})

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := lifecycleAddress.FindStringSubmatch(s.stderr.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited before serving: %v; stderr:\n%s", s.err, s.stderr)
		case <-deadline:
			t.Fatalf("serve wrote no \"serving hooks\" line with a loopback address in 30 s; stderr:\n%s", s.stderr)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits at most 40 seconds, longer than serve's own
// 30-second shutdown timeout, and returns the exit status.
func (s *lifecycleServer) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM to serve failed: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40 s of SIGTERM; stderr:\n%s", s.stderr)
	}
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		return exit.ExitCode()
	}
	if s.err != nil {
		t.Fatalf("waiting for serve failed: %v", s.err)
	}
	return 0
}

// lifecycleCurl runs curl with args against the loopback server and
// returns the HTTP status and the body. --noproxy keeps a proxy set in the
// environment from receiving the request.
func lifecycleCurl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	full := append([]string{"--silent", "--show-error", "--noproxy", "*", "--max-time", "20", "--output", "-", "--write-out", "\n%{http_code}"}, args...)
	res := lifecycleRun(t, "curl", full...)
	if res.code != 0 {
		t.Fatalf("curl %q exited %d: %s", args, res.code, res.stderr)
	}
	cut := strings.LastIndexByte(res.stdout, '\n')
	status, err := strconv.Atoi(res.stdout[cut+1:])
	if cut < 0 || err != nil {
		t.Fatalf("curl %q printed %q, expected a body and a status", args, res.stdout)
	}
	return status, res.stdout[:cut]
}

// post calls the example hook with the token in the body, as the README
// shows, and returns the status.
func (s *lifecycleServer) post(t *testing.T, tok string) (int, string) {
	t.Helper()
	return lifecycleCurl(t, "-d", "token="+tok+"&some", s.url+"/some-hook.json")
}

// expect asserts the status of a call with tok.
func (s *lifecycleServer) expect(t *testing.T, label, tok string, want int) {
	t.Helper()
	status, body := s.post(t, tok)
	if status != want {
		t.Errorf("%s: status %d, expected %d; body %s", label, status, want, body)
	}
}

// lifecycleCacheWait bounds the wait for a running serve to see a change
// made by another process. serve checks tokens against a copy that it
// reloads every DefaultStaleness/2, and on PostgreSQL also when notified,
// so a change reaches it within DefaultStaleness; the rest is a margin for
// a loaded machine.
const lifecycleCacheWait = store.DefaultStaleness + 5*time.Second

// await calls the hook with tok until it returns want, for at most
// lifecycleCacheWait, because a change made by another process reaches
// serve's copy of the tokens only at its next reload.
func (s *lifecycleServer) await(t *testing.T, label, tok string, want int) {
	t.Helper()
	deadline := time.Now().Add(lifecycleCacheWait)
	for {
		status, body := s.post(t, tok)
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still status %d after %s, expected %d; body %s", label, status, lifecycleCacheWait, want, body)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lifecycleTokenRow is one line of "list --json".
type lifecycleTokenRow struct {
	Name       string     `json:"name"`
	ID         string     `json:"id"`
	SiteID     string     `json:"site_id"`
	State      string     `json:"state"`
	Created    *time.Time `json:"created"`
	Expires    *time.Time `json:"expires"`
	Revoked    *time.Time `json:"revoked"`
	LastUsed   *time.Time `json:"last_used"`
	ReplacedBy string     `json:"replaced_by"`
}

// lifecycleList runs "list --json" and returns its rows by id.
func lifecycleList(t *testing.T, dsn string) map[string]lifecycleTokenRow {
	t.Helper()
	res := lifecycleOK(t, dsn, "list", "--json")
	rows := map[string]lifecycleTokenRow{}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if line == "" {
			continue
		}
		var r lifecycleTokenRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("list --json line %q is not JSON: %v", line, err)
		}
		rows[r.ID] = r
	}
	return rows
}

// lifecycleEvent is one line of "audit --json".
type lifecycleEvent struct {
	Code   string `json:"code"`
	Event  string `json:"event"`
	SiteID string `json:"site_id"`
	Page   string `json:"page"`
	Detail string `json:"detail"`
}

func lifecycleAudit(t *testing.T, dsn string) []lifecycleEvent {
	t.Helper()
	res := lifecycleOK(t, dsn, "audit", "--json")
	var out []lifecycleEvent
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if line == "" {
			continue
		}
		var e lifecycleEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit --json line %q is not JSON: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// lifecycleNoSecrets asserts that text contains none of the tokens, whole
// or by their secret part.
func lifecycleNoSecrets(t *testing.T, source, text string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if strings.Contains(text, lifecycleSecret(tok)) {
			t.Errorf("%s contains the secret of token %s", source, lifecycleID(tok))
		}
	}
}

// lifecycleStore returns the DSN of a new store for backend, migrated.
func lifecycleStore(t *testing.T, b testdb.Backend) string {
	t.Helper()
	dsn := b.New(t)
	lifecycleOK(t, dsn, "migrate")
	return dsn
}

// TestLifecycleScenario follows one client's token from creation to
// revocation with the commands and curl.
func TestLifecycleScenario(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := lifecycleStore(t, b)

			first := lifecycleNewToken(t, dsn, "create", "--name", "mail-gateway")
			srv := lifecycleServe(t, dsn)
			srv.expect(t, "created token", first, 200)
			status, body := lifecycleCurl(t, "-H", "Authorization: Bearer "+first, "-d", "check", srv.url+"/gs-auth-token-check.json")
			if status != 200 || !strings.Contains(body, lifecycleID(first)) {
				t.Errorf("check hook with a Bearer header: status %d, body %s; expected 200 naming token %s", status, body, lifecycleID(first))
			}

			second := lifecycleNewToken(t, dsn, "rotate", "mail-gateway", "--grace", "1h")
			srv.expect(t, "old token in grace", first, 200)
			srv.expect(t, "new token", second, 200)

			third := lifecycleNewToken(t, dsn, "rotate", "mail-gateway", "--grace", "0")
			srv.await(t, "token rotated with grace 0", second, 401)
			srv.expect(t, "newest token", third, 200)
			srv.expect(t, "first token still in its 1h grace", first, 200)

			rows := lifecycleList(t, dsn)
			wantStates := map[string]string{lifecycleID(first): "rotated", lifecycleID(second): "expired", lifecycleID(third): "active"}
			for id, want := range wantStates {
				if got := rows[id].State; got != want {
					t.Errorf("list --json state of %s = %q, expected %q", id, got, want)
				}
			}

			revoke := lifecycleOK(t, dsn, "revoke", "mail-gateway")
			for _, tok := range []string{first, second, third} {
				if !strings.Contains(revoke.stdout, "(id "+lifecycleID(tok)+")") {
					t.Errorf("revoke output %q does not name token %s", revoke.stdout, lifecycleID(tok))
				}
			}
			srv.await(t, "revoked token", third, 401)
			srv.await(t, "revoked token in grace", first, 401)

			if code := srv.stop(t); code != 0 {
				t.Errorf("serve exited %d after SIGTERM, expected 0", code)
			}
			if out := srv.stdout.String(); out != "" {
				t.Errorf("serve printed %q on standard output, expected nothing: a usable token existed", out)
			}
			lifecycleNoSecrets(t, "serve's log", srv.stderr.String(), first, second, third)

			t.Run("list", func(t *testing.T) {
				lifecycleScenarioList(t, dsn, first, second, third)
			})
			t.Run("audit", func(t *testing.T) {
				lifecycleScenarioAudit(t, dsn, first, second, third)
			})
		})
	}
}

func lifecycleScenarioList(t *testing.T, dsn, first, second, third string) {
	table := lifecycleOK(t, dsn, "list")
	lifecycleNoSecrets(t, "list", table.stdout+table.stderr, first, second, third)
	lines := strings.Split(strings.TrimSpace(table.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("list printed %d lines, expected a header and 3 tokens:\n%s", len(lines), table.stdout)
	}
	for _, col := range []string{"NAME", "ID", "SITE", "STATE", "CREATED", "EXPIRES", "LAST USED"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("list header %q has no column %s", lines[0], col)
		}
	}
	date := regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}`)
	for _, tok := range []string{first, second, third} {
		id := lifecycleID(tok)
		var line string
		for _, l := range lines[1:] {
			if strings.Contains(l, id) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("list has no line for token %s:\n%s", id, table.stdout)
			continue
		}
		for _, want := range []string{"mail-gateway", "revoked"} {
			if !strings.Contains(line, want) {
				t.Errorf("list line %q does not contain %q", line, want)
			}
		}
		// Created, expires (for the two rotated tokens) and last use.
		if n := len(date.FindAllString(line, -1)); n < 2 {
			t.Errorf("list line %q shows %d dates, expected the creation and the last use at least", line, n)
		}
	}

	rows := lifecycleList(t, dsn)
	if len(rows) != 3 {
		t.Errorf("list --json has %d rows, expected 3", len(rows))
	}
	for i, tok := range []string{first, second, third} {
		r, ok := rows[lifecycleID(tok)]
		if !ok {
			t.Errorf("list --json has no row for token %s", lifecycleID(tok))
			continue
		}
		if r.Name != "mail-gateway" || r.SiteID != "" || r.State != "revoked" {
			t.Errorf("list --json row %+v, expected mail-gateway on the install-wide site, revoked", r)
		}
		if r.Created == nil || r.Revoked == nil {
			t.Errorf("list --json row of %s has no creation or revocation date", r.ID)
		}
		if r.LastUsed == nil {
			t.Errorf("list --json row of %s has no last use, but the token authenticated requests", r.ID)
		}
		if i < 2 && r.Expires == nil {
			t.Errorf("list --json row of rotated token %s has no expiry", r.ID)
		}
	}
	if got, want := rows[lifecycleID(first)].ReplacedBy, lifecycleID(second); got != want {
		t.Errorf("first token replaced_by = %q, expected %q", got, want)
	}
	if got, want := rows[lifecycleID(second)].ReplacedBy, lifecycleID(third); got != want {
		t.Errorf("second token replaced_by = %q, expected %q", got, want)
	}
	raw := lifecycleOK(t, dsn, "list", "--json")
	lifecycleNoSecrets(t, "list --json", raw.stdout+raw.stderr, first, second, third)
}

func lifecycleScenarioAudit(t *testing.T, dsn, first, second, third string) {
	events := lifecycleAudit(t, dsn)
	tests := []struct {
		code, event, detail string
	}{
		{"2", "expired token", `expired token "mail-gateway" (id ` + lifecycleID(second) + ")"},
		{"3", "revoked token", `revoked token "mail-gateway" (id ` + lifecycleID(third) + ")"},
		{"3", "revoked token", `revoked token "mail-gateway" (id ` + lifecycleID(first) + ")"},
	}
	for _, tt := range tests {
		found := false
		for _, e := range events {
			if e.Code == tt.code && e.Event == tt.event && strings.Contains(e.Detail, tt.detail) {
				found = true
				if !strings.HasSuffix(e.Page, "/some-hook.json") {
					t.Errorf("event %+v page, expected the hook's URL", e)
				}
				if !strings.Contains(e.Detail, "127.0.0.1") {
					t.Errorf("event detail %q does not name the client", e.Detail)
				}
			}
		}
		if !found {
			t.Errorf("audit --json has no %s event with detail %q; events: %+v", tt.event, tt.detail, events)
		}
	}
	if len(events) != len(tests) {
		t.Errorf("audit --json has %d events, expected %d: one per rejected request", len(events), len(tests))
	}

	table := lifecycleOK(t, dsn, "audit")
	for _, tt := range tests {
		if !strings.Contains(table.stdout, tt.detail) {
			t.Errorf("audit table does not contain %q:\n%s", tt.detail, table.stdout)
		}
	}
	lifecycleNoSecrets(t, "audit", table.stdout+table.stderr, first, second, third)
}

// TestLifecycleUsageErrors checks the messages and exit statuses of wrong
// commands: 1 for wrong arguments, 2 for a failure on the store, as
// "gs-auth-token --help" documents.
func TestLifecycleUsageErrors(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := lifecycleStore(t, b)
			lifecycleNewToken(t, dsn, "create", "--name", "mail-gateway")
			tests := []struct {
				name string
				args []string
				code int
				want []string // substrings of standard error
			}{
				{"rotate without NAME", []string{"rotate"}, 1, []string{"gs-auth-token: error: ", "rotate takes one argument, NAME; got 0", "gs-auth-token: hint: "}},
				{"rotate with two names", []string{"rotate", "a", "b"}, 1, []string{"takes one argument, NAME; got 2"}},
				{"bad --grace", []string{"rotate", "mail-gateway", "--grace", "1x"}, 1, []string{`invalid --grace "1x"`, "24h"}},
				{"negative --grace", []string{"rotate", "mail-gateway", "--grace", "-1h"}, 1, []string{`invalid --grace "-1h"`}},
				{"bad --expires", []string{"rotate", "mail-gateway", "--expires", "soon"}, 1, []string{`invalid --expires "soon"`}},
				{"rotate unknown name", []string{"rotate", "nobody"}, 2, []string{`no active token named "nobody"`, "gs-auth-token list"}},
				{"revoke unknown name", []string{"revoke", "nobody"}, 2, []string{"token not found", `"nobody"`, "gs-auth-token list"}},
				{"revoke without NAME", []string{"revoke"}, 1, []string{"takes one argument, NAME|ID; got 0"}},
				{"create invalid name", []string{"create", "--name", "mail gateway"}, 1, []string{`invalid token name "mail gateway"`}},
				{"create existing name", []string{"create", "--name", "mail-gateway"}, 2, []string{"already exists", "rotate it, or revoke it first"}},
				{"list with argument", []string{"list", "extra"}, 1, []string{"takes no arguments"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res := lifecycleCLI(t, dsn, tt.args...)

					if res.code != tt.code {
						t.Errorf("exit status %d, expected %d; stderr:\n%s", res.code, tt.code, res.stderr)
					}
					for _, want := range tt.want {
						if !strings.Contains(res.stderr, want) {
							t.Errorf("stderr %q does not contain %q", res.stderr, want)
						}
					}
					if res.stdout != "" {
						t.Errorf("stdout = %q, expected nothing", res.stdout)
					}
					if strings.Contains(res.stderr, "goroutine ") || strings.Contains(res.stderr, "panic") {
						t.Errorf("stderr shows a crash:\n%s", res.stderr)
					}
				})
			}

			rows := lifecycleList(t, dsn)
			if len(rows) != 1 {
				t.Errorf("list --json has %d rows after the failed commands, expected 1", len(rows))
			}
		})
	}
}

// TestLifecycleLegacyBesideNamed checks that GroupServer's plain-text
// token, written by gs_auth_token_create, keeps working beside named
// tokens until it is retired.
func TestLifecycleLegacyBesideNamed(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := lifecycleStore(t, b)
			res := lifecycleRun(t, bins.Create, dsn)
			if res.code != 0 {
				t.Fatalf("gs_auth_token_create exited %d; stderr:\n%s", res.code, res.stderr)
			}
			m := regexp.MustCompile(`\n    ([0-9A-Za-z]{32})\n`).FindStringSubmatch(res.stdout)
			if m == nil {
				t.Fatalf("gs_auth_token_create printed no indented token:\n%s", res.stdout)
			}
			legacy := m[1]
			named := lifecycleNewToken(t, dsn, "create", "--name", "mail-gateway")
			srv := lifecycleServe(t, dsn)

			srv.expect(t, "legacy token", legacy, 200)
			srv.expect(t, "named token", named, 200)

			rows := lifecycleList(t, dsn)
			if r, ok := rows["legacy"]; !ok || !strings.HasPrefix(r.State, "active") {
				t.Errorf("list --json legacy row = %+v, present %v; expected an active row with id legacy", r, ok)
			}
			listed := lifecycleOK(t, dsn, "list")
			if strings.Contains(listed.stdout, legacy) {
				t.Errorf("list shows the plain-text token")
			}
			lifecycleNoSecrets(t, "list", listed.stdout, named)

			retire := lifecycleOK(t, dsn, "revoke", "legacy")
			if !strings.Contains(retire.stdout, "retired GroupServer's plain-text token") {
				t.Errorf("revoke legacy printed %q, expected it to say the token was retired", retire.stdout)
			}
			srv.await(t, "retired legacy token", legacy, 401)
			srv.expect(t, "named token after retiring legacy", named, 200)

			again := lifecycleCLI(t, dsn, "revoke", "legacy")
			if again.code != 2 || !strings.Contains(again.stderr, "no plain-text token to retire") {
				t.Errorf("second revoke legacy: exit %d, stderr %q; expected 2 and a message that there is none", again.code, again.stderr)
			}
			if code := srv.stop(t); code != 0 {
				t.Errorf("serve exited %d after SIGTERM, expected 0", code)
			}
			if strings.Contains(srv.stderr.String(), legacy) {
				t.Errorf("serve's log contains the plain-text token")
			}
		})
	}
}

// TestLifecycleServeRejectInstallWide checks that serve with
// --reject-install-wide, on a store whose only token is install-wide,
// creates a token for its site as it does when no token is valid: the
// install-wide token is rejected there, so without a new one the site
// accepts nothing.
func TestLifecycleServeRejectInstallWide(t *testing.T) {
	dsn := lifecycleStore(t, testdb.Backend{Name: "sqlite", New: testdb.SQLite})
	wide := lifecycleNewToken(t, dsn, "create", "--name", "wide")

	srv := lifecycleServe(t, dsn, "--site-id", "main", "--reject-install-wide")

	srv.expect(t, "install-wide token on a site that rejects them", wide, 401)
	m := regexp.MustCompile(`\n    (gst_[0-9A-Za-z_]{51})\n`).FindStringSubmatch(srv.stdout.String())
	if m == nil {
		t.Fatalf("serve printed no new token for site main, so no token is valid there; stdout %q", srv.stdout.String())
	}
	srv.expect(t, "token created by serve", m[1], 200)
}
