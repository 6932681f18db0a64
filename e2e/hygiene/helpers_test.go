package hygiene

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// password is the canary password put in every DSN that carries one.
const password = "s3cr3t-canary-pw"

// commandTimeout bounds every run of a command and every HTTP request.
const commandTimeout = 60 * time.Second

// secret is one string that must never appear in an output.
type secret struct {
	label string
	value string
	// fold makes the search ignore case, for hexadecimal digests.
	fold bool
}

// secretSet is every secret of one test.
type secretSet struct {
	items []secret
}

func (s *secretSet) add(label, value string, fold bool) {
	if fold {
		value = strings.ToLower(value)
	}
	s.items = append(s.items, secret{label: label, value: value, fold: fold})
}

// addToken adds tok, its hex SHA-256 digest and, for a token in the new
// format, its secret part alone, so that a log of a truncated token is
// caught too.
func (s *secretSet) addToken(label, tok string) {
	s.add(label, tok, false)
	s.add("SHA-256 of "+label, sha256Hex(tok), true)
	if len(tok) == token.Length && token.HasPrefix(tok) {
		start := len(token.Prefix) + token.IDLength + 1
		s.add("secret part of "+label, tok[start:start+token.SecretLength], false)
	}
}

// find returns the labels of the secrets that text contains.
func (s *secretSet) find(text string) []string {
	lower := strings.ToLower(text)
	var out []string
	for _, sec := range s.items {
		hay := text
		if sec.fold {
			hay = lower
		}
		if strings.Contains(hay, sec.value) {
			out = append(out, sec.label)
		}
	}
	return out
}

// check reports every secret that text contains, with the line it is on.
// The secret itself is masked in the report.
func (s *secretSet) check(t *testing.T, where, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, sec := range s.items {
		hay := text
		if sec.fold {
			hay = lower
		}
		i := strings.Index(hay, sec.value)
		if i < 0 {
			continue
		}
		t.Errorf("%s contains the %s, in: %s", where, sec.label, excerpt(text, i, len(sec.value)))
	}
}

// excerpt returns the line of text that contains the n bytes at offset i,
// with those bytes replaced by a marker and the line cut to 400 bytes.
func excerpt(text string, i, n int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := len(text)
	if j := strings.IndexByte(text[i+n:], '\n'); j >= 0 {
		end = i + n + j
	}
	line := text[start:i] + "[SECRET]" + text[i+n:end]
	if len(line) > 400 {
		line = line[:400] + "…"
	}
	return fmt.Sprintf("%q", line)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// canary returns a wrong token that is easy to search for in output.
func canary(t *testing.T) string {
	t.Helper()
	return "WRONG-canary-" + randomHex(t, 8)
}

// forge returns a well-formed token with a real token's public id and a
// secret of the test's own, so that only its digest comparison fails.
func forge(t *testing.T, id string) string {
	t.Helper()
	secretPart := "WRONGcanary" + randomHex(t, 16)[:token.SecretLength-len("WRONGcanary")]
	body := token.Prefix + id + "_" + secretPart
	n := crc32.ChecksumIEEE([]byte(body))
	var sum [token.ChecksumLength]byte
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = token.Alphabet[n%62]
		n /= 62
	}
	return body + string(sum[:])
}

// tokenID returns the public id of a token in the new format.
func tokenID(tok string) string {
	return tok[len(token.Prefix) : len(token.Prefix)+token.IDLength]
}

// withPassword returns dsn with the canary password in its user
// information.
func withPassword(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing DSN %q failed: %v", dsn, err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// backend is a store for the commands.
type backend struct {
	name string
	// newDSN returns the DSN of a new, empty store.
	newDSN func(t *testing.T) string
}

// backends returns SQLite, and PostgreSQL with the canary password in the
// DSN. PostgreSQL skips when GS_AUTH_TOKEN_TEST_DSN is unset.
func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return testdb.SQLite(t) }},
		{"postgresql", func(t *testing.T) string { return withPassword(t, testdb.Postgres(t)) }},
	}
}

// output is a piece of text that a test saw leave the product.
type output struct {
	where string
	text  string
	// printed is a token that this output prints by design, such as the
	// standard output of create. It is masked before the check.
	printed string
}

// suite keeps the secrets of one test and the outputs to check against
// them at its end.
type suite struct {
	t       *testing.T
	dir     string
	secrets *secretSet
	outputs []output
}

func newSuite(t *testing.T) *suite {
	s := &suite{t: t, dir: t.TempDir(), secrets: &secretSet{}}
	s.secrets.add("DSN password", password, false)
	return s
}

// record keeps text to check once every secret is known.
func (s *suite) record(where, text string) {
	s.outputs = append(s.outputs, output{where: where, text: text})
}

// checkOutputs checks every recorded output against every secret.
func (s *suite) checkOutputs(t *testing.T) {
	t.Helper()
	for _, o := range s.outputs {
		text := o.text
		if o.printed != "" {
			text = strings.ReplaceAll(text, o.printed, "<token printed by design>")
		}
		s.secrets.check(t, o.where, text)
	}
}

// result is the outcome of one run of a command.
type result struct {
	stdout string
	stderr string
	code   int
}

// run runs bin with args in dir, with env added to an environment that
// names no store and no password.
func run(t *testing.T, dir string, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %s failed: %v", bin, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %s", bin, args, commandTimeout)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// cleanEnv returns the test's environment without the variables that
// choose a store or give a PostgreSQL password.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GS_AUTH_TOKEN_DSN", "PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// cli runs gs-auth-token with args, records its output and returns it.
func (s *suite) cli(args ...string) result {
	s.t.Helper()
	r := run(s.t, s.dir, nil, bins.Tool, args...)
	s.record(fmt.Sprintf("standard output of gs-auth-token %s", args[0]), r.stdout)
	s.record(fmt.Sprintf("standard error of gs-auth-token %s", args[0]), r.stderr)
	return r
}

// cliOK runs gs-auth-token with args and fails the test unless it exits
// with 0.
func (s *suite) cliOK(args ...string) result {
	s.t.Helper()
	r := s.cli(args...)
	if r.code != 0 {
		s.t.Fatalf("gs-auth-token %q exited with %d: %s", args, r.code, r.stderr)
	}
	return r
}

// newToken runs a command that prints one new token on standard output
// (create or rotate), adds the token to the secrets and returns it.
func (s *suite) newToken(label string, args ...string) string {
	s.t.Helper()
	r := run(s.t, s.dir, nil, bins.Tool, args...)
	if r.code != 0 {
		s.t.Fatalf("gs-auth-token %q exited with %d: %s", args, r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if _, err := token.ParseID(tok); err != nil {
		s.t.Fatalf("gs-auth-token %s printed %q, not one token", args[0], r.stdout)
	}
	s.outputs = append(s.outputs,
		output{where: "standard output of gs-auth-token " + args[0] + " for the " + label, text: r.stdout, printed: tok},
		output{where: "standard error of gs-auth-token " + args[0] + " for the " + label, text: r.stderr})
	s.secrets.addToken(label, tok)
	return tok
}

// indentedTokenPattern finds the token that gs_auth_token_create, and serve on
// an empty store, print on an indented line.
var indentedTokenPattern = regexp.MustCompile(`(?m)^    (\S+)$`)

// legacyToken runs gs_auth_token_create on dsn, adds the plain-text token
// it prints to the secrets and returns it.
func (s *suite) legacyToken(label, dsn string) string {
	s.t.Helper()
	r := run(s.t, s.dir, nil, bins.Create, dsn)
	if r.code != 0 {
		s.t.Fatalf("gs_auth_token_create exited with %d: %s", r.code, r.stderr)
	}
	m := indentedTokenPattern.FindStringSubmatch(r.stdout)
	if m == nil {
		s.t.Fatalf("gs_auth_token_create printed no token: %q", r.stdout)
	}
	s.outputs = append(s.outputs,
		output{where: "standard output of gs_auth_token_create", text: r.stdout, printed: m[1]},
		output{where: "standard error of gs_auth_token_create", text: r.stderr})
	s.secrets.addToken(label, m[1])
	return m[1]
}

// waitExpired polls list until the token named name is expired, for at
// most 10 seconds.
func (s *suite) waitExpired(dsn, name string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := s.cliOK("list", "--dsn", dsn, "--json")
		for _, line := range strings.Split(strings.TrimSpace(out.stdout), "\n") {
			var row struct{ Name, State string }
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				s.t.Fatalf("list line %q is not JSON: %v", line, err)
			}
			if row.Name == name && row.State == "expired" {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("token %q was not expired within 10 s; list:\n%s", name, out.stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

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

// server is a running "gs-auth-token serve".
type server struct {
	cmd    *exec.Cmd
	base   string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

// servingPattern finds the address in the "serving hooks" line, in the
// text and the JSON log formats.
var servingPattern = regexp.MustCompile(`serving hooks[^\n]*?address[^\n]*?(http://127\.0\.0\.1:[0-9]+)`)

// startServe starts serve on a free loopback port with args, and env added
// to its environment, and returns once it logs its address. The process is
// killed when t ends if it is still running.
func startServe(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)
	s := &server{cmd: exec.Command(bins.Tool, all...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Env = append(cleanEnv(), env...)
	s.cmd.Stdout = s.stdout
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting gs-auth-token serve failed: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("gs-auth-token serve (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
		}
	})

	deadline := time.After(30 * time.Second)
	for {
		if m := servingPattern.FindStringSubmatch(s.stderr.String()); m != nil {
			s.base = m[1]
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("gs-auth-token serve exited before serving: %v\nstderr:\n%s", s.err, s.stderr)
		case <-deadline:
			t.Fatalf("gs-auth-token serve logged no address within 30 s\nstderr:\n%s", s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits up to 40 seconds for the process to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	client.CloseIdleConnections()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM failed: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("gs-auth-token serve did not stop within 40 s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("gs-auth-token serve exited with %d after SIGTERM; stderr:\n%s", code, s.stderr)
	}
}

// client sends requests straight to the loopback server, never through a
// proxy from the environment.
var client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: commandTimeout}

// request is one HTTP request of a case.
type request struct {
	method string
	// target is the path and query.
	target string
	ctype  string
	body   string
	// headers are sent in order; a name may repeat.
	headers [][2]string
}

// exchange is a response with its body read.
type exchange struct {
	status int
	header http.Header
	body   string
}

// headerText returns the response headers as "Name: value" lines.
func (e exchange) headerText() string {
	names := make([]string, 0, len(e.header))
	for name := range e.header {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		for _, v := range e.header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	return b.String()
}

// send sends req to the server and reads the whole response.
func (s *server) send(t *testing.T, req request) exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r, err := http.NewRequestWithContext(ctx, req.method, s.base+req.target, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.ctype != "" {
		r.Header.Set("Content-Type", req.ctype)
	}
	for _, h := range req.headers {
		r.Header.Add(h[0], h[1])
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatalf("%s %s failed: %v", req.method, req.target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %s %s failed: %v", req.method, req.target, err)
	}
	return exchange{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// get fetches a loopback URL, such as the metrics of the server, and reads
// the whole response.
func get(t *testing.T, rawURL string) exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatalf("GET %s failed: %v", rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to GET %s failed: %v", rawURL, err)
	}
	return exchange{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// post returns a URL-encoded POST of body to path.
func post(path, body string, headers ...[2]string) request {
	return request{method: http.MethodPost, target: path, ctype: "application/x-www-form-urlencoded", body: body, headers: headers}
}

// openDB opens the database of a DSN of the commands for reading tables.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		db, err = sql.Open("sqlite", "file:"+path)
	} else {
		db, err = sql.Open("pgx", dsn)
	}
	if err != nil {
		t.Fatalf("opening the database failed: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dumpTable returns every row of table as "column=value" text, one line a
// row.
func dumpTable(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		t.Fatalf("reading table %s failed: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}

	var out []string
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("reading a row of %s failed: %v", table, err)
		}

		var b strings.Builder
		for i, v := range values {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			if raw, ok := v.([]byte); ok {
				v = string(raw)
			}
			fmt.Fprintf(&b, "%s=%v", cols[i], v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading table %s failed: %v", table, err)
	}
	return out
}

// storedDigests returns the digest column of gs_auth_token, by token id.
func storedDigests(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT id, digest FROM gs_auth_token")
	if err != nil {
		t.Fatalf("reading gs_auth_token failed: %v", err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var id, digest string
		if err := rows.Scan(&id, &digest); err != nil {
			t.Fatal(err)
		}
		out[id] = digest
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditCodes counts the rows of audit_event by event code.
func auditCodes(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT event_code FROM audit_event")
	if err != nil {
		t.Fatalf("reading audit_event failed: %v", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			t.Fatal(err)
		}
		out[code]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
