package hook

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// fuzzToken is the only token the fuzzed endpoint accepts.
const fuzzToken = "gst_000000000000_00000000000000000000000000000000000000"

// fuzzVerifier accepts fuzzToken and nothing else.
type fuzzVerifier struct{ set *token.Set }

func (v fuzzVerifier) Verify(_ context.Context, _ string, supplied string) (token.Entry, error) {
	return v.set.Check(supplied)
}

func fuzzEndpoint() *Endpoint {
	v := fuzzVerifier{set: token.NewSet(token.Entry{Digest: token.Sum(fuzzToken), ID: "fuzz"})}
	return New(Hook{
		Label: "Fuzzed hook",
		Fields: []Field{
			{Name: "token", Kind: AuthToken, Title: "Token", Required: true},
			{Name: "subject", Kind: TextLine, Title: "Subject"},
			{Name: "body", Kind: Text, Title: "Body"},
			{Name: "code", Kind: ASCIILine, Title: "Code", MaxLength: 16},
			{Name: "n", Kind: Int, Title: "Number"},
			{Name: "digest", Kind: Bool, Title: "Digest"},
			{Name: "mode", Kind: Choice, Title: "Mode", Values: []string{"a", "b"}},
		},
		Actions: []Action{{Name: "some", Label: "Some", Success: func(context.Context, *Submission) (any, error) {
			return map[string]int{"status": 0}, nil
		}}},
	}, v, WithLogger(slog.New(slog.DiscardHandler)), WithPrefixes("", "form."), WithMaxParts(50), WithMaxBodyBytes(64<<10))
}

// allowedStatus lists every status the endpoint may send in response to a
// client's request. A 500 or any other would mean a client mistake became a server
// error.
var allowedStatus = map[int]bool{200: true, 400: true, 401: true, 405: true, 413: true, 415: true}

// checkAnswer asserts what holds for every response: an allowed status, a
// JSON body, and no trace of the string CANARY, which the endpoint never
// writes itself, so it can only come from echoing the request.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if !allowedStatus[rec.Code] {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("body is not JSON: %q", rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "CANARY") {
		t.Errorf("answer echoes the request: %s", rec.Body.String())
	}
	for name, values := range rec.Header() {
		for _, v := range values {
			if strings.Contains(v, "CANARY") {
				t.Errorf("header %s echoes the request: %q", name, v)
			}
		}
	}
}

// FuzzURLEncodedBody posts arbitrary application/x-www-form-urlencoded
// bodies and URL queries. The seed corpus is in
// testdata/fuzz/FuzzURLEncodedBody.
func FuzzURLEncodedBody(f *testing.F) {
	f.Add("token="+fuzzToken+"&some=", "")
	f.Add("token=CANARY-wrong&some=&subject=CANARY", "")
	f.Add("form.token="+fuzzToken+"&form.actions.some=&form.n=CANARY", "")
	f.Add("token=%ZZ&some", "token=CANARY")
	f.Add("token=a&token=CANARY&some", "")
	f.Add("some&n=12&digest=on&mode=c&code=%C3%A9", "x=1;token=CANARY")
	ep := fuzzEndpoint()

	f.Fuzz(func(t *testing.T, body, query string) {
		target := "/hook.json"
		if query != "" {
			target += "?" + strings.ReplaceAll(strings.ReplaceAll(query, "#", ""), " ", "")
		}
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		checkAnswer(t, rec)
		if ran(rec) && !strings.Contains(body, fuzzToken) {
			t.Errorf("ran the action for a body without the token: %q", body)
		}
	})
}

// ran reports whether the response is the action's result, as opposed to
// the description, which a request naming no action gets with 200 too.
func ran(rec *httptest.ResponseRecorder) bool {
	return rec.Code == http.StatusOK && strings.TrimSpace(rec.Body.String()) == "{\n    \"status\": 0\n}"
}

// FuzzMultipartBody posts arbitrary multipart/form-data bodies under a
// fixed boundary. The seed corpus is in testdata/fuzz/FuzzMultipartBody.
func FuzzMultipartBody(f *testing.F) {
	part := func(name, value string) string {
		return "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	f.Add(part("form.token", fuzzToken) + part("form.actions.some", "") + "--B--\r\n")
	f.Add(part("token", "CANARY") + part("some", "") + "--B--\r\n")
	f.Add(part("token", fuzzToken) + part("some", "") + part("subject", "CANARY\r\nline") + "--B--\r\n")
	f.Add("--B\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nCANARY")
	f.Add("garbage CANARY")
	ep := fuzzEndpoint()

	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/hook.json", strings.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=B")
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		checkAnswer(t, rec)
		if ran(rec) && !strings.Contains(body, fuzzToken) {
			t.Errorf("ran the action for a body without the token: %q", body)
		}
	})
}

// FuzzAuthorization parses arbitrary Authorization headers. The seed corpus
// is in testdata/fuzz/FuzzAuthorization.
func FuzzAuthorization(f *testing.F) {
	f.Add("Bearer " + fuzzToken)
	f.Add("bearer   abc")
	f.Add("Bearer\tabc")
	f.Add("Token Bearer abc")
	f.Add("Bearer ")
	f.Add("Bearer abc==")
	f.Add("Basic dXNlcjpwYXNz")

	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/hook.json", nil)
		req.Header["Authorization"] = []string{header}
		tok, present, ok := bearerToken(req)
		if !present {
			t.Fatal("a header that is set was reported absent")
		}
		if !ok {
			if tok != "" {
				t.Errorf("malformed header %q returned token %q", header, tok)
			}
			return
		}
		if len(header) > maxAuthorization {
			t.Errorf("accepted a header of %d bytes", len(header))
		}
		if !isToken68(tok) {
			t.Errorf("accepted %q, which is not a token68", tok)
		}
		scheme, rest, _ := strings.Cut(header, " ")
		if !strings.EqualFold(scheme, "bearer") {
			t.Errorf("accepted scheme %q", scheme)
		}
		if strings.TrimLeft(rest, " ") != tok {
			t.Errorf("token %q is not the rest of %q", tok, header)
		}
	})
}
