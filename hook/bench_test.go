package hook_test

import (
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// benchEndpoint returns the example hook over an in-memory verifier and its
// token, so that the benchmarks measure the endpoint alone.
func benchEndpoint(b *testing.B) (http.Handler, string) {
	b.Helper()
	tok, _, err := token.New()
	if err != nil {
		b.Fatal(err)
	}
	v := newExampleVerifier(tok)
	ep := hook.New(hook.Hook{
		Label: "Some hook",
		Fields: []hook.Field{
			{Name: "token", Kind: hook.AuthToken, Title: "Token", Required: true},
			{Name: "subject", Kind: hook.TextLine, Title: "Subject"},
		},
		Actions: []hook.Action{{Name: "some", Label: "Some", Success: func(context.Context, *hook.Submission) (any, error) {
			return nil, nil
		}}},
	}, v, hook.WithLogger(slog.New(slog.DiscardHandler)), hook.WithPrefixes("", "form."))
	return ep, tok
}

func BenchmarkEndpointURLEncoded(b *testing.B) {
	ep, tok := benchEndpoint(b)
	body := url.Values{"token": {tok}, "some": {""}, "subject": {"A subject line"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/some-hook.json", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkEndpointMultipart(b *testing.B) {
	ep, tok := benchEndpoint(b)
	var buf strings.Builder
	mw := multipart.NewWriter(&buf)
	mw.WriteField("form.token", tok)
	mw.WriteField("form.actions.some", "")
	mw.WriteField("form.subject", "A subject line")
	mw.Close()
	body, ctype := buf.String(), mw.FormDataContentType()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/some-hook.json", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			io.Copy(io.Discard, rec.Body)
			b.Fatalf("status %d", rec.Code)
		}
	}
}
