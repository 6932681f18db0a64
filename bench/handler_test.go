package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// statusWriter is a ResponseWriter that keeps only the header map and the
// status, which benchHandler resets between requests.
type statusWriter struct {
	h    http.Header
	code int
}

func (s *statusWriter) Header() http.Header { return s.h }

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return len(p), nil
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

// benchHandler calls h with the benchmark's form, reusing one request, so
// that the handler's own cost is measured without HTTP's.
func benchHandler(b *testing.B, h http.Handler, tok string) {
	body := []byte(url.Values{"token": {tok}, "some": {""}}.Encode())
	r := httptest.NewRequest(http.MethodPost, "/some-hook.json", nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "127.0.0.1:40000"
	rd := bytes.NewReader(body)
	w := &statusWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(body))
		r.Form, r.PostForm, r.MultipartForm = nil, nil, nil
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d, want 200", w.code)
		}
	}
}

// BenchmarkHandlers compares the handlers of the load comparison, called
// directly: the bare one, echo's KeyAuth on the token cache, and the hook
// on the same cache, alone and with the throttle, counters, audit batcher
// and access-log wrapper that gs-auth-token serve adds at --log-level warn.
func BenchmarkHandlers(b *testing.B) {
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

	var result any = json.RawMessage(answer)
	someHook := hook.Hook{
		Label:  "Some hook",
		Fields: []hook.Field{{Name: "token", Kind: hook.AuthToken, Title: "Token", Required: true}},
		Actions: []hook.Action{{Name: "some", Label: "Some", Success: func(context.Context, *hook.Submission) (any, error) {
			return result, nil
		}}},
	}
	alone := http.NewServeMux()
	alone.Handle("/some-hook.json", hook.New(someHook, cache, hook.WithLogger(slog.New(slog.DiscardHandler)), hook.WithPrefixes("", "form.")))

	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	batcher := audit.NewBatcher(st)
	defer batcher.Close(ctx)
	configured := http.NewServeMux()
	configured.Handle("/some-hook.json", hook.New(someHook, cache, hook.WithLogger(logger), hook.WithPrefixes("", "form."),
		hook.WithAudit(batcher), hook.WithStats(&hook.Stats{}), hook.WithThrottle(hook.NewThrottle(hook.DefaultFailures, hook.DefaultWindow))))

	b.Run("bare", func(b *testing.B) { benchHandler(b, bareHandler([]byte(tok)), tok) })
	b.Run("echo", func(b *testing.B) { benchHandler(b, echoHandler(cache), tok) })
	b.Run("hook", func(b *testing.B) { benchHandler(b, alone, tok) })
	b.Run("hook-as-served", func(b *testing.B) { benchHandler(b, hook.AccessLog(logger)(configured), tok) })
}
