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

// BenchmarkLoopback compares the served hooks, with the token cache, to a
// bare handler that parses the same form and writes the same response.
func BenchmarkLoopback(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
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
	defer cache.Close()

	b.Run("bare", func(b *testing.B) {
		benchLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(tok)) != 1 {
				http.Error(w, "{}", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(someHookAnswer)
		}), tok)
	})
	b.Run("hook", func(b *testing.B) {
		benchLoopback(b, Handler(Config{Verifier: cache, Logger: slog.New(slog.DiscardHandler)}), tok)
	})
	b.Run("serve-config", func(b *testing.B) {
		// The configuration gs-auth-token serve uses, at --log-level warn.
		logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
		batcher := audit.NewBatcher(st)
		defer batcher.Close(ctx)
		h := Handler(Config{Verifier: cache, Audit: batcher, Logger: logger, Stats: &hook.Stats{},
			Throttle: hook.NewThrottle(hook.DefaultFailures, hook.DefaultWindow)})
		benchLoopback(b, hook.AccessLog(logger)(h), tok)
	})
}
