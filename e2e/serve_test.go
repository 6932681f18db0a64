package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// Paths of the hooks that serve offers.
const (
	somePath  = "/some-hook.json"
	checkPath = "/gs-auth-token-check.json"
)

// authFailed is the one message of every 401 response.
const authFailed = "Authentication failed: the token is missing or not valid for this site."

// pythonPost posts a multipart form with requests, as GroupServer's mail
// gateway does, and prints the status, the Content-Type and the body.
const pythonPost = `import json, os, sys
import requests

session = requests.Session()
session.trust_env = False  # never use a proxy from the environment
fields = {
    "form.token": (None, os.environ["HOOK_TOKEN"]),
    "form.actions." + sys.argv[2]: (None, ""),
}
r = session.post(sys.argv[1], files=fields, timeout=30)
print(json.dumps({"status": r.status_code, "content_type": r.headers.get("Content-Type"), "body": r.text}))
`

// pythonResult is the status, Content-Type and body that pythonPost prints.
type pythonResult struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// postPython runs pythonPost against url with the given token and action.
func postPython(t *testing.T, url, token, action string) pythonResult {
	t.Helper()
	script := filepath.Join(t.TempDir(), "post.py")
	if err := os.WriteFile(script, []byte(pythonPost), 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, []string{"HOOK_TOKEN=" + token}, "python3", script, url, action)
	if out.code != 0 {
		t.Fatalf("python3 exited with %d: %s", out.code, out.stderr)
	}
	var a pythonResult
	if err := json.Unmarshal([]byte(out.stdout), &a); err != nil {
		t.Fatalf("python3 printed %q, not JSON: %v", out.stdout, err)
	}
	return a
}

// rawExchange sends head on a new connection, lets body write the rest, and
// returns the first response. Writing stops at the first error, as when the
// server closes the connection after answering.
func rawExchange(t *testing.T, serverURL, head string, body func(w io.Writer) error) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(serverURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to %s failed: %v", serverURL, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		t.Fatal(err)
	}

	written := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			written <- err
			return
		}
		written <- body(conn)
	}()

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response failed: %v", err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body failed: %v", err)
	}
	conn.Close()
	select {
	case <-written:
	case <-time.After(commandTimeout):
		t.Errorf("the request writer did not stop after the connection closed")
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// streamChunked writes total bytes of a form body to w in chunked encoding,
// 32 KiB at a time, without holding the body in memory.
func streamChunked(w io.Writer, prefix string, total int64) error {
	cw := httputil.NewChunkedWriter(w)
	if _, err := io.WriteString(cw, prefix); err != nil {
		return err
	}
	block := bytes.Repeat([]byte("a"), 32<<10)
	for sent := int64(len(prefix)); sent < total; sent += int64(len(block)) {
		if _, err := cw.Write(block); err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n")
	return err
}

// manyParts returns a multipart body with the token, the action and
// n-2 other parts, and its Content-Type.
func manyParts(tok string, n int) (string, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("token", tok)
	mw.WriteField("some", "")
	for i := 2; i < n; i++ {
		mw.WriteField(fmt.Sprintf("p%d", i), "x")
	}
	mw.Close()
	return buf.String(), mw.FormDataContentType()
}

// messages returns the message list of an error response.
func messages(t *testing.T, a response) []any {
	t.Helper()
	msgs, _ := a.json(t)["message"].([]any)
	return msgs
}

func TestServe(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.newDSN(t)
			p := startServe(t, dsn, "--site-id", "site1", "--site-name", "Site one", "--throttle-failures", "0")
			tok := p.printedToken(t)
			some := p.url + somePath
			check := p.url + checkPath

			t.Run("description", func(t *testing.T) {
				a := send(t, http.MethodGet, some, "", nil)
				if a.status != http.StatusOK {
					t.Fatalf("status = %d, want 200", a.status)
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				d := a.json(t)
				if got, want := d["message"], []any{"Some hook"}; !reflect.DeepEqual(got, want) {
					t.Errorf("message = %v, want %v", got, want)
				}
				if got, want := d["actions"], map[string]any{"some": "Some"}; !reflect.DeepEqual(got, want) {
					t.Errorf("actions = %v, want %v", got, want)
				}
				args, _ := d["arguments"].(map[string]any)
				want := map[string]any{"Title": "Token", "Type": "AuthToken", "Description": "The authentication token", "Required": true}
				if got := args["token"]; !reflect.DeepEqual(got, want) {
					t.Errorf("arguments.token = %v, want %v", got, want)
				}
			})

			t.Run("curl", func(t *testing.T) {
				a := curl(t, some, "-d", "token="+tok+"&some")
				if a.status != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", a.status, a.body)
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if got := a.json(t)["status"]; got != 0.0 {
					t.Errorf("status field = %v, want 0", got)
				}
			})

			t.Run("curl wrong token", func(t *testing.T) {
				before, _ := auditJSON(t, dsn, "--limit", "100000")
				a := curl(t, some, "-d", "token=wrong&some")
				if a.status != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401; body %s", a.status, a.body)
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("WWW-Authenticate header is missing")
				}
				if got := messages(t, a); !reflect.DeepEqual(got, []any{authFailed}) {
					t.Errorf("messages = %v, want [%s]", got, authFailed)
				}

				after := waitAudit(t, dsn, some, countPage(before, some)+1)
				if n := countPage(after, some) - countPage(before, some); n != 1 {
					t.Fatalf("audit shows %d new failures for %s, want 1", n, some)
				}
				var newest auditEvent
				for _, e := range after {
					if e.Page == some {
						newest = e
						break
					}
				}
				want := auditEvent{ID: newest.ID, Code: audit.CodeMismatch, Event: "token mismatch", SiteID: "site1", Page: some, Detail: "127.0.0.1"}
				if newest != want {
					t.Errorf("newest event = %+v, want %+v", newest, want)
				}
			})

			t.Run("audit table", func(t *testing.T) {
				out := runCLI(t, "audit", "--dsn", dsn)
				if out.code != 0 {
					t.Fatalf("audit exited with %d: %s", out.code, out.stderr)
				}
				var row string
				for _, line := range strings.Split(out.stdout, "\n") {
					if strings.Contains(line, some) {
						row = line
					}
				}
				if row == "" {
					t.Fatalf("audit lists no failure for %s:\n%s", some, out.stdout)
				}
				for _, want := range []string{"token mismatch", `"site1"`, "127.0.0.1"} {
					if !strings.Contains(row, want) {
						t.Errorf("row %q lacks %q", row, want)
					}
				}
			})

			t.Run("audit limit", func(t *testing.T) {
				before, _ := auditJSON(t, dsn, "--limit", "100000")
				curl(t, some, "-d", "token=wrong&some")
				waitAudit(t, dsn, some, countPage(before, some)+1)
				for _, limit := range []int{1, 2} {
					events, _ := auditJSON(t, dsn, "--limit", fmt.Sprint(limit))
					if len(events) != limit {
						t.Errorf("--limit %d listed %d events", limit, len(events))
					}
				}
			})

			t.Run("audit since", func(t *testing.T) {
				old := auditEvent{ID: "old-event-" + randomHex(t), Page: p.url + "/old-page.json"}
				writeOldEvent(t, dsn, old.ID, old.Page, 72*time.Hour)
				tests := []struct {
					since string
					want  int
				}{
					{"24h", 0},
					{"90m", 0},
					{"4d", 1},
				}
				for _, tt := range tests {
					t.Run(tt.since, func(t *testing.T) {
						events, _ := auditJSON(t, dsn, "--since", tt.since, "--limit", "100000")
						if n := countPage(events, old.Page); n != tt.want {
							t.Errorf("--since %s listed the 3-day-old event %d times, want %d", tt.since, n, tt.want)
						}
						if n := countPage(events, some); n == 0 {
							t.Errorf("--since %s listed no recent failure for %s", tt.since, some)
						}
					})
				}
			})

			t.Run("python multipart", func(t *testing.T) {
				tests := []struct {
					name   string
					url    string
					token  string
					action string
					want   int
				}{
					{"some", some, tok, "some", http.StatusOK},
					{"check", check, tok, "check", http.StatusOK},
					{"wrong token", some, "wrong", "some", http.StatusUnauthorized},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						a := postPython(t, tt.url, tt.token, tt.action)
						if a.Status != tt.want {
							t.Errorf("status = %d, want %d; body %s", a.Status, tt.want, a.Body)
						}
						if a.ContentType != "application/json" {
							t.Errorf("Content-Type = %q, want application/json", a.ContentType)
						}
					})
				}
			})

			t.Run("check hook", func(t *testing.T) {
				a := postForm(t, check, "token="+tok+"&check")
				if a.status != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", a.status, a.body)
				}
				if got, want := a.json(t)["site"], map[string]any{"id": "site1", "name": "Site one"}; !reflect.DeepEqual(got, want) {
					t.Errorf("site = %v, want %v", got, want)
				}
				if strings.Contains(a.body, tok) {
					t.Errorf("body %s contains the token", a.body)
				}
				if wrong := postForm(t, check, "token=wrong&check"); wrong.status != http.StatusUnauthorized {
					t.Errorf("wrong token: status = %d, want 401", wrong.status)
				}
			})

			t.Run("refusals", func(t *testing.T) {
				parts, partsType := manyParts(tok, 5000)
				tests := []struct {
					name        string
					method      string
					url         string
					contentType string
					body        string
					want        int
				}{
					{"put", http.MethodPut, some, "application/x-www-form-urlencoded", "token=" + tok + "&some", http.StatusMethodNotAllowed},
					{"delete", http.MethodDelete, check, "", "", http.StatusMethodNotAllowed},
					{"text body", http.MethodPost, some, "text/plain", "token=" + tok + "&some", http.StatusUnsupportedMediaType},
					{"json body", http.MethodPost, some, "application/json", `{"token": "` + tok + `"}`, http.StatusUnsupportedMediaType},
					{"bad percent encoding", http.MethodPost, some, "application/x-www-form-urlencoded", "token=" + tok + "&some&x=%ZZ", http.StatusBadRequest},
					{"token in query", http.MethodPost, some + "?token=" + tok, "application/x-www-form-urlencoded", "token=" + tok + "&some", http.StatusBadRequest},
					{"token in query of get", http.MethodGet, check + "?form.token=" + tok, "", "", http.StatusBadRequest},
					{"token twice", http.MethodPost, some, "application/x-www-form-urlencoded", "token=wrong&token=" + tok + "&some", http.StatusBadRequest},
					{"malformed multipart", http.MethodPost, some, "multipart/form-data; boundary=xyz", "not multipart", http.StatusBadRequest},
					{"5000 parts", http.MethodPost, some, partsType, parts, http.StatusRequestEntityTooLarge},
					{"zero width token", http.MethodPost, some, "application/x-www-form-urlencoded", "token=" + url.QueryEscape("\u200b"+tok) + "&some", http.StatusUnauthorized},
					{"empty token", http.MethodPost, some, "application/x-www-form-urlencoded", "token=&some", http.StatusUnauthorized},
				}
				for _, tt := range tests {
					t.Run(tt.name, func(t *testing.T) {
						var body io.Reader
						if tt.body != "" {
							body = strings.NewReader(tt.body)
						}
						a := send(t, tt.method, tt.url, tt.contentType, body)
						if a.status != tt.want {
							t.Errorf("status = %d, want %d; body %s", a.status, tt.want, a.body)
						}
						if ct := a.header.Get("Content-Type"); ct != "application/json" {
							t.Errorf("Content-Type = %q, want application/json", ct)
						}
						if strings.Contains(a.body, tok) {
							t.Errorf("body %s contains the token", a.body)
						}
					})
				}
			})

			t.Run("empty token not audited", func(t *testing.T) {
				before := flushAudit(t, dsn, p)
				for _, body := range []string{"token=&some", "some", "form.token=&form.actions.some"} {
					if a := postForm(t, some, body); a.status != http.StatusUnauthorized {
						t.Errorf("%s: status = %d, want 401", body, a.status)
					}
				}
				after := flushAudit(t, dsn, p)
				if n := countPage(after, some) - countPage(before, some); n != 0 {
					t.Errorf("audit shows %d new failures, want 0", n)
				}
			})

			t.Run("declared length too large", func(t *testing.T) {
				head := "POST " + somePath + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(p.url, "http://") +
					"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000000\r\n\r\n"
				a := rawExchange(t, p.url, head, func(w io.Writer) error {
					_, err := io.WriteString(w, "token="+tok+"&some")
					return err
				})
				if a.status != http.StatusRequestEntityTooLarge {
					t.Errorf("status = %d, want 413; body %s", a.status, a.body)
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			})

			t.Run("chunked 200 MB", func(t *testing.T) {
				head := "POST " + somePath + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(p.url, "http://") +
					"\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
				a := rawExchange(t, p.url, head, func(w io.Writer) error {
					return streamChunked(w, "token="+tok+"&some&pad=", 200<<20)
				})
				if a.status != http.StatusRequestEntityTooLarge {
					t.Errorf("status = %d, want 413; body %s", a.status, a.body)
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				if after := send(t, http.MethodGet, some, "", nil); after.status != http.StatusOK {
					t.Errorf("the server answered %d after the large body, want 200", after.status)
				}
			})

			t.Run("canary", func(t *testing.T) {
				secret := canary(t)
				responses := []response{
					curl(t, some, "-d", "token="+secret+"&some"),
					curl(t, check, "-F", "form.token="+secret, "-F", "form.actions.check="),
					curl(t, some+"?token="+secret),
					postForm(t, some, "token="+tok+"&token="+secret+"&some"),
					postForm(t, some, "token="+url.QueryEscape(secret+"\u200b")+"&some"),
				}
				py := postPython(t, some, secret, "some")
				responses = append(responses, response{status: py.Status, body: py.Body})
				flushAudit(t, dsn, p)
				for i, a := range responses {
					if a.status < 400 || a.status >= 500 {
						t.Errorf("request %d: status = %d, want a 4xx rejection", i, a.status)
					}
					if strings.Contains(a.body, secret) {
						t.Errorf("request %d: body %s contains the canary", i, a.body)
					}
					for name, values := range a.header {
						if strings.Contains(strings.Join(values, " "), secret) {
							t.Errorf("request %d: header %s contains the canary", i, name)
						}
					}
				}
				if _, out := auditJSON(t, dsn, "--limit", "100000"); strings.Contains(out, secret) {
					t.Errorf("audit --json output contains the canary")
				}
				if out := runCLI(t, "audit", "--dsn", dsn, "--limit", "100000"); strings.Contains(out.stdout+out.stderr, secret) {
					t.Errorf("audit output contains the canary")
				}
				if strings.Contains(p.stderr.String(), secret) {
					t.Errorf("the server's log contains the canary")
				}
				if strings.Contains(p.stdout.String(), secret) {
					t.Errorf("the server's standard output contains the canary")
				}
			})

			t.Run("concurrent mismatches", func(t *testing.T) {
				const requests = 1000
				page := p.url + "/gs-auth-token-check.json"
				before, _ := auditJSON(t, dsn, "--limit", "100000")
				statuses := make(chan int, requests)
				var wg sync.WaitGroup
				for range requests {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
						defer cancel()
						req, _ := http.NewRequestWithContext(ctx, http.MethodPost, page, strings.NewReader("token=wrong&check"))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						resp, err := client.Do(req)
						if err != nil {
							statuses <- 0
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						statuses <- resp.StatusCode
					}()
				}
				wg.Wait()
				close(statuses)
				unauthorized := 0
				for s := range statuses {
					if s == http.StatusUnauthorized {
						unauthorized++
					}
				}
				if unauthorized != requests {
					t.Errorf("%d requests answered 401, want %d", unauthorized, requests)
				}

				after := waitAudit(t, dsn, page, countPage(before, page)+requests)
				if n := countPage(after, page) - countPage(before, page); n != requests {
					t.Errorf("audit shows %d new failures for %s, want %d", n, page, requests)
				}
				ids := make(map[string]bool, len(after))
				for _, e := range after {
					ids[e.ID] = true
				}
				if len(ids) != len(after) {
					t.Errorf("audit lists %d distinct ids among %d events", len(ids), len(after))
				}
				if strings.Contains(p.stderr.String(), "writing an audit event failed") {
					t.Errorf("the server logged failed audit writes")
				}
			})

			t.Run("access log", func(t *testing.T) {
				send(t, http.MethodGet, some+"?lang=en&note=query-marker", "", nil)
				lines := accessLogLines(p.stderr.String())
				if len(lines) == 0 {
					t.Fatalf("the server logged no requests; stderr:\n%s", p.stderr)
				}
				for _, line := range lines {
					if strings.Contains(line, "?") {
						t.Errorf("access log line %q contains a query string", line)
					}
				}
				if strings.Contains(p.stderr.String(), "query-marker") {
					t.Errorf("the server's log contains a query parameter")
				}
			})

			t.Run("sigterm", func(t *testing.T) {
				before, _ := auditJSON(t, dsn, "--limit", "100000")
				if a := postForm(t, check, "token=wrong&check"); a.status != http.StatusUnauthorized {
					t.Errorf("status = %d, want 401", a.status)
				}
				if code := p.stop(t); code != 0 {
					t.Errorf("exit status = %d, want 0; stderr:\n%s", code, p.stderr)
				}
				if !strings.Contains(p.stderr.String(), "msg=stopped") {
					t.Errorf("the server did not log that it stopped; stderr:\n%s", p.stderr)
				}
				after, _ := auditJSON(t, dsn, "--limit", "100000")
				if n := countPage(after, check) - countPage(before, check); n != 1 {
					t.Errorf("audit shows %d failures from just before SIGTERM, want 1 written on the way out", n)
				}
			})
		})
	}
}

func TestServeStoreUnavailable(t *testing.T) {
	dsn := backends()[1].newDSN(t)
	p := startServe(t, dsn, "--cache=false")
	tok := p.printedToken(t)
	some := p.url + somePath
	if a := postForm(t, some, "token="+tok+"&some"); a.status != http.StatusOK {
		t.Fatalf("status before the table was dropped = %d, want 200", a.status)
	}

	dropTokenTables(t, dsn)
	tests := []struct {
		name string
		body string
	}{
		{"valid token", "token=" + tok + "&some"},
		{"wrong token", "token=wrong&some"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postForm(t, some, tt.body)
			if a.status != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503; body %s", a.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if strings.Contains(a.body, tok) {
				t.Errorf("body %s contains the token", a.body)
			}
		})
	}
	if a := send(t, http.MethodGet, some, "", nil); a.status != http.StatusOK {
		t.Errorf("the server answered %d to a GET after the store failed, want 200", a.status)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
}

func TestServeThrottle(t *testing.T) {
	p := startServe(t, testdb.SQLite(t), "--throttle-failures", "3")
	tok := p.printedToken(t)
	some := p.url + somePath
	for i := range 3 {
		if a := postForm(t, some, "token=wrong&some"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status = %d, want 401", i+1, a.status)
		}
	}
	tests := []struct {
		name string
		body string
	}{
		{"wrong token", "token=wrong&some"},
		{"valid token", "token=" + tok + "&some"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postForm(t, some, tt.body)
			if a.status != http.StatusTooManyRequests {
				t.Errorf("status = %d, want 429; body %s", a.status, a.body)
			}
			if a.header.Get("Retry-After") == "" {
				t.Errorf("Retry-After header is missing")
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}
	if a := send(t, http.MethodGet, some, "", nil); a.status != http.StatusOK {
		t.Errorf("description: status = %d, want 200 while locked out", a.status)
	}
}

func TestServeRestart(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.newDSN(t)
			first := startServe(t, dsn)
			tok := first.printedToken(t)
			if code := first.stop(t); code != 0 {
				t.Fatalf("first run exited with %d", code)
			}

			second := startServe(t, dsn)
			if a := postForm(t, second.url+somePath, "token="+tok+"&some"); a.status != http.StatusOK {
				t.Errorf("the first token answered %d after a restart, want 200", a.status)
			}
			if code := second.stop(t); code != 0 {
				t.Errorf("second run exited with %d", code)
			}
			if out := second.stdout.String(); out != "" {
				t.Errorf("second run printed %q on standard output, want nothing", out)
			}
		})
	}
}

var accessLinePattern = regexp.MustCompile(`msg=request .*`)

// accessLogLines returns the access log lines of a text log.
func accessLogLines(log string) []string {
	return accessLinePattern.FindAllString(log, -1)
}

// flushAudit sends a wrong token to the check hook and waits until the
// audit trail lists it. serve writes events in order, so every failure
// answered before has been written too. It returns the listing.
func flushAudit(t *testing.T, dsn string, p *serveProcess) []auditEvent {
	t.Helper()
	page := p.url + checkPath
	before, _ := auditJSON(t, dsn, "--limit", "100000")
	if a := postForm(t, page, "token=wrong&check"); a.status != http.StatusUnauthorized {
		t.Fatalf("marker failure: status = %d, want 401", a.status)
	}
	after := waitAudit(t, dsn, page, countPage(before, page)+1)
	if countPage(after, page) <= countPage(before, page) {
		t.Fatalf("the marker failure did not reach the audit trail within 30 s")
	}
	return after
}

// writeOldEvent stores a token failure dated age ago.
func writeOldEvent(t *testing.T, dsn, id, page string, age time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("store.Open failed: %v", err)
	}
	defer st.Close()
	e := audit.Event{ID: id, Date: time.Now().Add(-age), Subsystem: audit.Subsystem, Code: audit.CodeMismatch,
		SiteID: "site1", InstanceDatum: page, SupplementaryDatum: "127.0.0.1"}
	if err := st.WriteAuditEvent(ctx, e); err != nil {
		t.Fatalf("WriteAuditEvent failed: %v", err)
	}
}

// dropTokenTables drops the tables that hold tokens from the PostgreSQL
// schema of dsn: GroupServer's option table and the named tokens.
func dropTokenTables(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL failed: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP TABLE option, gs_auth_token CASCADE"); err != nil {
		t.Fatalf("dropping the token tables failed: %v", err)
	}
}
