package hook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// pageTarget is the URL the tests request. httptest.NewRequest sends
// nothing over the network, so the host only shapes the page URL.
const pageTarget = "http://127.0.0.1/hook.json"

// formType is the Content-Type of a URL-encoded body.
const formType = "application/x-www-form-urlencoded"

// testContext returns a context that ends when t does or after 60 seconds.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens and migrates the store at dsn, stores a new install-wide
// token in it and returns both.
func openStore(t testing.TB, dsn string) (*store.Store, string) {
	t.Helper()
	ctx := testContext(t)
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("store.Open(%q) failed: %v", dsn, err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate failed: %v", err)
	}
	tok, err := token.Generate()
	if err != nil {
		t.Fatalf("token.Generate failed: %v", err)
	}
	if err := st.ReplaceLegacyToken(ctx, tok); err != nil {
		t.Fatalf("ReplaceLegacyToken failed: %v", err)
	}
	return st, tok
}

// sqliteStore returns a new SQLite store holding a token, and the token.
func sqliteStore(t testing.TB) (*store.Store, string) {
	t.Helper()
	return openStore(t, testdb.SQLite(t))
}

// auditRows returns every gs.auth.token event in st.
func auditRows(t testing.TB, st *store.Store) []audit.Event {
	t.Helper()
	events, err := st.AuditEvents(testContext(t), store.AuditQuery{Subsystem: audit.Subsystem, Limit: 100000})
	if err != nil {
		t.Fatalf("AuditEvents failed: %v", err)
	}
	return events
}

// canary returns a wrong token that is easy to search for in output.
func canary(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "WRONG-canary-" + hex.EncodeToString(b)
}

// logBuffer collects the output of a slog handler. It is safe for
// concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the JSON log records written so far.
func (b *logBuffer) records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// count returns how many records have the given level and message.
func (b *logBuffer) count(t testing.TB, level, msg string) int {
	t.Helper()
	n := 0
	for _, rec := range b.records(t) {
		if rec["level"] == level && rec["msg"] == msg {
			n++
		}
	}
	return n
}

// lines returns the records with the given level, one JSON line each.
func (b *logBuffer) lines(t testing.TB, level string) string {
	t.Helper()
	var out []string
	for _, rec := range b.records(t) {
		if rec["level"] == level {
			line, _ := json.Marshal(rec)
			out = append(out, string(line))
		}
	}
	return strings.Join(out, "\n")
}

// newLogger returns a logger that writes JSON records at debug level and
// above to the returned buffer.
func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// newEndpoint returns hook.New(h, v, opts...) with a logger that discards
// its output unless opts set another, so that test output stays readable.
func newEndpoint(h hook.Hook, v hook.Verifier, opts ...hook.Option) *hook.Endpoint {
	quiet := hook.WithLogger(slog.New(slog.DiscardHandler))
	return hook.New(h, v, append([]hook.Option{quiet}, opts...)...)
}

// countingVerifier passes calls to a Verifier and counts them.
type countingVerifier struct {
	next  hook.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	c.calls.Add(1)
	return c.next.Verify(ctx, siteID, supplied)
}

// tokenField is the token field of the test hooks.
var tokenField = hook.Field{Name: "token", Kind: hook.AuthToken, Title: "Token", Description: "The authentication token", Required: true}

// echoAction is an action that returns the submission's values.
func echoAction(name string, fields ...string) hook.Action {
	return hook.Action{
		Name:  name,
		Label: "Echo " + name,
		Success: func(ctx context.Context, s *hook.Submission) (any, error) {
			values := map[string]any{}
			for _, f := range fields {
				values[f] = s.Value(f)
			}
			return map[string]any{"action": s.Action, "token_id": s.TokenID, "site_id": s.Site.ID, "values": values}, nil
		},
	}
}

// someHook is GroupServer's example hook: a token and the action some.
func someHook() hook.Hook {
	return hook.Hook{Label: "Some hook", Fields: []hook.Field{tokenField}, Actions: []hook.Action{echoAction("some", "token")}}
}

// request builds a request to target with the given Content-Type and body.
// An empty contentType or body is left out.
func request(method, target, contentType, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// serve runs req through h and returns the recorded response.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// postForm posts a URL-encoded body to pageTarget.
func postForm(h http.Handler, body string) *httptest.ResponseRecorder {
	return serve(h, request(http.MethodPost, pageTarget, formType, body))
}

// multipartBody encodes fields, in order, as multipart/form-data and
// returns the body and its Content-Type.
func multipartBody(t testing.TB, fields ...[2]string) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), mw.FormDataContentType()
}

// errorAnswer is the JSON body of a failed request.
type errorAnswer struct {
	Status  int      `json:"status"`
	Message []string `json:"message"`
}

// decodeErrors decodes the error body of rec.
func decodeErrors(t testing.TB, rec *httptest.ResponseRecorder) errorAnswer {
	t.Helper()
	var out errorAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("body %q is not a JSON error answer: %v", rec.Body.String(), err)
	}
	return out
}

// decodeMap decodes the JSON object in rec's body.
func decodeMap(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	return out
}
