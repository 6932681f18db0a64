package server

import (
	"context"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// benchLoopback posts the example hook's form to h over loopback HTTP with
// keep-alive, from as many goroutines as GOMAXPROCS.
func benchLoopback(b *testing.B, h http.Handler, tok string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := url.Values{"token": {tok}, "some": {""}}.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for pb.Next() {
			resp, err := client.Post(srv.URL+SomeHookPath, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// benchCase is a handler under comparison.
type benchCase struct {
	name    string
	handler http.Handler
}

// benchCases opens a SQLite store with one token and returns the token
// and three handlers to compare. The bare one parses the same form and
// writes the same response. The other two are the served hooks with the
// token cache, alone and as gs-auth-token serve configures them at
// --log-level warn.
func benchCases(b *testing.B) (string, []benchCase) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, "bench", "", 0)
	if err != nil {
		b.Fatal(err)
	}
	cache, err := st.NewCache(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close() })

	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(tok)) != 1 {
			http.Error(w, "{}", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(someHookAnswer)
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	batcher := audit.NewBatcher(st)
	b.Cleanup(func() { batcher.Close(ctx) })
	served := Handler(Config{Verifier: cache, Audit: batcher, Logger: logger, Stats: &hook.Stats{},
		Throttle: hook.NewThrottle(hook.DefaultFailures, hook.DefaultWindow)})
	return tok, []benchCase{
		{"bare", bare},
		{"hook", Handler(Config{Verifier: cache, Logger: slog.New(slog.DiscardHandler)})},
		{"serve-config", hook.AccessLog(logger)(served)},
	}
}

// BenchmarkLoopback compares the handlers over loopback HTTP.
func BenchmarkLoopback(b *testing.B) {
	tok, cases := benchCases(b)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchLoopback(b, c.handler, tok) })
	}
}
