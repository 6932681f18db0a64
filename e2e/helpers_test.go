package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
)

// commandTimeout bounds every run of the bins.Tool, curl and python3.
const commandTimeout = 60 * time.Second

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// backend is a store for the bins.Tool, and how to prepare it.
type backend struct {
	name string
	// newDSN returns the DSN of a new, empty store ready for serve.
	newDSN func(t *testing.T) string
}

// backends returns SQLite and PostgreSQL. PostgreSQL skips when
// GS_AUTH_TOKEN_TEST_DSN is unset; its tables are made with
// "gs-auth-token migrate", because serve only checks them there.
func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return testdb.SQLite(t) }},
		{"postgresql", func(t *testing.T) string {
			dsn := testdb.Postgres(t)
			if out := runCLI(t, "migrate", "--dsn", dsn); out.code != 0 {
				t.Fatalf("gs-auth-token migrate exited with %d: %s", out.code, out.stderr)
			}
			return dsn
		}},
	}
}

// cliResult is the outcome of one run of a command.
type cliResult struct {
	stdout string
	stderr string
	code   int
}

// run runs name with args and env added to the environment.
func run(t *testing.T, env []string, name string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %s failed: %v", name, err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// runCLI runs the built gs-auth-token with args.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return run(t, nil, bins.Tool, args...)
}

// serveProcess is a running "gs-auth-token serve".
type serveProcess struct {
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

var addressPattern = regexp.MustCompile(`msg="serving hooks" address=(http://127\.0\.0\.1:[0-9]+)`)

// startServe starts serve on a free loopback port with the store at dsn
// and returns once it logs its address. The process is killed when t ends
// if it is still running.
func startServe(t *testing.T, dsn string, args ...string) *serveProcess {
	t.Helper()
	all := append([]string{"serve", "--dsn", dsn, "--listen", "127.0.0.1:0"}, args...)
	p := &serveProcess{cmd: exec.Command(bins.Tool, all...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting gs-auth-token serve failed: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("gs-auth-token serve (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		if m := addressPattern.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("gs-auth-token serve exited before serving: %v\nstderr:\n%s", p.err, p.stderr)
		case <-ctx.Done():
			t.Fatalf("gs-auth-token serve logged no address within 30 s\nstderr:\n%s", p.stderr)
		case <-ticker.C:
		}
	}
}

var printedTokenPattern = regexp.MustCompile(`(?m)^    (\S+)$`)

// printedToken waits up to 10 seconds for the token that serve prints on
// standard output when it creates one.
func (p *serveProcess) printedToken(t *testing.T) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if m := printedTokenPattern.FindStringSubmatch(p.stdout.String()); m != nil {
			return m[1]
		}
		select {
		case <-deadline:
			t.Fatalf("serve printed no token; stdout:\n%s", p.stdout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and returns the exit status. It first closes the
// client's idle connections: net/http's Shutdown waits 5 seconds for a
// connection that has not sent a request, and the client may have dialed
// spare ones.
func (p *serveProcess) stop(t *testing.T) int {
	t.Helper()
	client.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM failed: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("gs-auth-token serve did not stop within 40 s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// client sends requests straight to the loopback server, never through a
// proxy from the environment.
var client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 100}, Timeout: commandTimeout}

// response is an HTTP response with its body read.
type response struct {
	status int
	header http.Header
	body   string
}

// json decodes the body as a JSON object.
func (a response) json(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(a.body), &out); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	return out
}

// send sends a request and reads the whole response.
func send(t *testing.T, method, url, contentType string, body io.Reader) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s failed: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %s %s failed: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// postForm posts a URL-encoded body.
func postForm(t *testing.T, url, body string) response {
	t.Helper()
	return send(t, http.MethodPost, url, "application/x-www-form-urlencoded", strings.NewReader(body))
}

// curl runs /usr/bin/curl against url, with no proxy, and returns the
// status, headers and body.
func curl(t *testing.T, url string, args ...string) response {
	t.Helper()
	dir := t.TempDir()
	headers := filepath.Join(dir, "headers")
	body := filepath.Join(dir, "body")
	all := append([]string{"--silent", "--show-error", "--noproxy", "*", "--max-time", "30",
		"--dump-header", headers, "--output", body}, args...)
	out := run(t, nil, "/usr/bin/curl", append(all, url)...)
	if out.code != 0 {
		t.Fatalf("curl exited with %d: %s", out.code, out.stderr)
	}
	rawHeaders, err := os.ReadFile(headers)
	if err != nil {
		t.Fatal(err)
	}
	rawBody, err := os.ReadFile(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(lastHeaderBlock(string(rawHeaders)))), nil)
	if err != nil {
		t.Fatalf("curl's headers %q cannot be parsed: %v", rawHeaders, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(rawBody)}
}

// lastHeaderBlock returns the final response head in curl's header dump,
// which also holds interim responses such as 100 Continue.
func lastHeaderBlock(dump string) string {
	blocks := strings.Split(strings.TrimSpace(dump), "\r\n\r\n")
	return blocks[len(blocks)-1] + "\r\n\r\n"
}

// auditEvent is one line of "gs-auth-token audit --json".
type auditEvent struct {
	ID     string `json:"id"`
	Code   string `json:"code"`
	Event  string `json:"event"`
	SiteID string `json:"site_id"`
	Page   string `json:"page"`
	Detail string `json:"detail"`
}

// auditJSON runs "gs-auth-token audit --json" with args and decodes its
// lines.
func auditJSON(t *testing.T, dsn string, args ...string) ([]auditEvent, string) {
	t.Helper()
	out := runCLI(t, append([]string{"audit", "--dsn", dsn, "--json"}, args...)...)
	if out.code != 0 {
		t.Fatalf("gs-auth-token audit exited with %d: %s", out.code, out.stderr)
	}
	var events []auditEvent
	for _, line := range strings.Split(strings.TrimSpace(out.stdout), "\n") {
		if line == "" {
			continue
		}
		var e auditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q is not JSON: %v", line, err)
		}
		events = append(events, e)
	}
	return events, out.stdout
}

// countPage returns how many events name page.
func countPage(events []auditEvent, page string) int {
	n := 0
	for _, e := range events {
		if e.Page == page {
			n++
		}
	}
	return n
}

// randomHex returns 16 random hexadecimal digits.
func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitAudit polls "gs-auth-token audit --json" for up to 30 seconds, until
// it lists at least want events for page, because serve writes audit events
// in batches after responding. It returns the last listing.
func waitAudit(t *testing.T, dsn, page string, want int) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, _ := auditJSON(t, dsn, "--limit", "100000")
		if countPage(events, page) >= want || time.Now().After(deadline) {
			return events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// canary returns a wrong token that is easy to search for in output.
func canary(t *testing.T) string {
	t.Helper()
	return "WRONG-canary-" + randomHex(t)
}
