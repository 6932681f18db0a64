package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/server"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// testContext returns a context that ends when t does or after 30 seconds.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens and migrates a store at dsn that holds a new token.
func openStore(t *testing.T, dsn string) (*store.Store, string) {
	t.Helper()
	ctx := testContext(t)
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("store.Open failed: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate failed: %v", err)
	}
	tok, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceLegacyToken(ctx, tok); err != nil {
		t.Fatalf("ReplaceLegacyToken failed: %v", err)
	}
	return st, tok
}

// startServer serves cfg on a loopback port until t ends. A nil Logger
// discards the log.
func startServer(t *testing.T, cfg server.Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := httptest.NewServer(server.Handler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

// response is the status, Content-Type and decoded JSON body of a response.
type response struct {
	status      int
	contentType string
	body        map[string]any
	raw         string
}

// do sends req with a client that uses no proxy and decodes the response.
func do(t *testing.T, req *http.Request) response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	resp, err := client.Do(req.WithContext(testContext(t)))
	if err != nil {
		t.Fatalf("%s %s failed: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), raw: string(raw)}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", raw, err)
	}
	return out
}

func get(t *testing.T, url string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func postForm(t *testing.T, url, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func TestIndex(t *testing.T) {
	st, _ := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st})
	tests := []struct {
		name       string
		path       string
		wantStatus int
	}{
		{"root", "/", http.StatusOK},
		{"unknown path", "/nothing-here.json", http.StatusNotFound},
		{"hook with suffix", server.SomeHookPath + "/x", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(t, srv.URL+tt.path)
			if got.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", got.status, tt.wantStatus)
			}
			if got.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got.contentType)
			}
		})
	}
	t.Run("hooks listed", func(t *testing.T) {
		want := []any{server.SomeHookPath, server.CheckHookPath}
		if got := get(t, srv.URL+"/").body["hooks"]; !reflect.DeepEqual(got, want) {
			t.Errorf("hooks = %v, want %v", got, want)
		}
	})
}

func TestSomeHook(t *testing.T) {
	st, tok := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st, Audit: st})
	url := srv.URL + server.SomeHookPath
	tests := []struct {
		name string
		body string
		want int
	}{
		{"json client", "token=" + tok + "&some", http.StatusOK},
		{"form client", "form.token=" + tok + "&form.actions.some", http.StatusOK},
		{"wrong token", "token=wrong&some", http.StatusUnauthorized},
		{"wrong form token", "form.token=wrong&form.actions.some", http.StatusUnauthorized},
		{"missing token", "some", http.StatusUnauthorized},
		{"no action", "token=" + tok, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postForm(t, url, tt.body)
			if got.status != tt.want {
				t.Errorf("status = %d, want %d; body %s", got.status, tt.want, got.raw)
			}
			if got.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got.contentType)
			}
		})
	}
	t.Run("result", func(t *testing.T) {
		got := postForm(t, url, "token="+tok+"&some").body
		want := map[string]any{"status": 0.0, "message": []any{"Some hook ran."}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v, want %v", got, want)
		}
	})
}

func TestDescriptions(t *testing.T) {
	st, _ := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st})
	tests := []struct {
		name        string
		path        string
		wantLabel   string
		wantActions map[string]any
	}{
		{"some", server.SomeHookPath, "Some hook", map[string]any{"some": "Some"}},
		{"check", server.CheckHookPath, "Check that a token is valid for this site", map[string]any{"check": "Check the token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(t, srv.URL+tt.path)
			if got.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", got.status)
			}
			if msg := got.body["message"]; !reflect.DeepEqual(msg, []any{tt.wantLabel}) {
				t.Errorf("message = %v, want [%s]", msg, tt.wantLabel)
			}
			if actions := got.body["actions"]; !reflect.DeepEqual(actions, tt.wantActions) {
				t.Errorf("actions = %v, want %v", actions, tt.wantActions)
			}
			args, _ := got.body["arguments"].(map[string]any)
			tokenArg, _ := args["token"].(map[string]any)
			if tokenArg["Required"] != true {
				t.Errorf("arguments.token = %v, want a required argument", tokenArg)
			}
		})
	}
}

func TestCheckHook(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			st, tok := openStore(t, backend.New(t))
			site := hook.Site{ID: "site1", Name: "Site one"}
			srv := startServer(t, server.Config{Verifier: st, Audit: st, Site: site})
			url := srv.URL + server.CheckHookPath

			ok := postForm(t, url, "token="+tok+"&check")
			if ok.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", ok.status, ok.raw)
			}
			if got, want := ok.body["site"], map[string]any{"id": "site1", "name": "Site one"}; !reflect.DeepEqual(got, want) {
				t.Errorf("site = %v, want %v", got, want)
			}
			if got, want := ok.body["token"], map[string]any{"id": store.LegacyTokenID}; !reflect.DeepEqual(got, want) {
				t.Errorf("token = %v, want %v", got, want)
			}
			if strings.Contains(ok.raw, tok) {
				t.Errorf("body %s contains the token", ok.raw)
			}

			wrong := postForm(t, url, "token=wrong&check")
			if wrong.status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", wrong.status)
			}
			events, err := st.AuditEvents(testContext(t), store.AuditQuery{Subsystem: audit.Subsystem})
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 {
				t.Fatalf("got %d audit events, want 1", len(events))
			}
			if events[0].InstanceDatum != url {
				t.Errorf("page = %q, want %q", events[0].InstanceDatum, url)
			}
			if events[0].SiteID != "site1" {
				t.Errorf("site = %q, want site1", events[0].SiteID)
			}
			if events[0].SupplementaryDatum != "127.0.0.1" {
				t.Errorf("client = %q, want 127.0.0.1", events[0].SupplementaryDatum)
			}
		})
	}
}

func TestCheckHookSiteLabel(t *testing.T) {
	st, tok := openStore(t, testdb.SQLite(t))
	tests := []struct {
		name string
		site hook.Site
		want string
	}{
		{"name", hook.Site{ID: "site1", Name: "Site one"}, `The token is valid for the site "Site one".`},
		{"id only", hook.Site{ID: "site1"}, `The token is valid for the site "site1".`},
		{"install-wide", hook.Site{}, `The token is valid for this server, which serves no particular site.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, server.Config{Verifier: st, Site: tt.site})
			got := postForm(t, srv.URL+server.CheckHookPath, "token="+tok+"&check")
			if msg := got.body["message"]; !reflect.DeepEqual(msg, []any{tt.want}) {
				t.Errorf("message = %v, want [%s]", msg, tt.want)
			}
		})
	}
}

func TestWithoutAudit(t *testing.T) {
	st, _ := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st})
	if got := postForm(t, srv.URL+server.SomeHookPath, "token=wrong&some"); got.status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", got.status)
	}
	events, err := st.AuditEvents(testContext(t), store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Errorf("got %d audit events with a nil Audit, want 0", len(events))
	}
}

func TestMaxBodyBytes(t *testing.T) {
	st, tok := openStore(t, testdb.SQLite(t))
	pad := func(n int) string { return "token=" + tok + "&some&pad=" + strings.Repeat("a", n) }
	tests := []struct {
		name  string
		limit int64
		body  string
		want  int
	}{
		{"default accepts 2 MB", 0, pad(2 << 20), http.StatusOK},
		{"default rejects 11 MiB", 0, pad(11 << 20), http.StatusRequestEntityTooLarge},
		{"set limit rejects", 1024, pad(2048), http.StatusRequestEntityTooLarge},
		{"set limit accepts", 1024, pad(100), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, server.Config{Verifier: st, MaxBodyBytes: tt.limit})
			for _, path := range []string{server.SomeHookPath, server.CheckHookPath} {
				body := tt.body
				if path == server.CheckHookPath {
					body = strings.Replace(body, "&some&", "&check&", 1)
				}
				if got := postForm(t, srv.URL+path, body); got.status != tt.want {
					t.Errorf("%s: status = %d, want %d", path, got.status, tt.want)
				}
			}
		})
	}
}

func TestTokenInQuery(t *testing.T) {
	st, tok := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st, Audit: st})
	tests := []struct {
		name  string
		query url.Values
	}{
		{"bare", url.Values{"token": {tok}}},
		{"form", url.Values{"form.token": {tok}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := postForm(t, srv.URL+server.SomeHookPath+"?"+tt.query.Encode(), "token="+tok+"&some")
			if got.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", got.status)
			}
			if strings.Contains(got.raw, tok) {
				t.Errorf("body %s contains the token", got.raw)
			}
		})
	}
}

func TestStoreUnavailable(t *testing.T) {
	st, tok := openStore(t, testdb.SQLite(t))
	srv := startServer(t, server.Config{Verifier: st, Audit: st})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{server.SomeHookPath, server.CheckHookPath} {
		t.Run(strings.Trim(path, "/"), func(t *testing.T) {
			body := "token=" + tok + "&some&check"
			if got := postForm(t, srv.URL+path, body); got.status != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503; body %s", got.status, got.raw)
			}
		})
	}
}
