package hook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/hook"
)

func TestTokenInQuery(t *testing.T) {
	st, tok := sqliteStore(t)
	tests := []struct {
		name   string
		method string
		query  string
		body   string
	}{
		{"get", http.MethodGet, "?token=" + tok, ""},
		{"get empty", http.MethodGet, "?token=", ""},
		{"post", http.MethodPost, "?token=" + tok, "token=" + tok + "&some"},
		{"post with action in query", http.MethodPost, "?token=" + tok + "&some", ""},
		{"among other parameters", http.MethodPost, "?lang=en&token=" + tok, "token=" + tok + "&some"},
		{"prefixed", http.MethodPost, "?form.token=" + tok, "form.token=" + tok + "&form.actions.some"},
		{"bare with prefixed endpoint", http.MethodPost, "?token=" + tok, "form.token=" + tok + "&form.actions.some"},
		{"name only", http.MethodGet, "?token", ""},
		{"encoded name", http.MethodPost, "?%74oken=" + tok, "token=" + tok + "&some"},
		{"after bad encoding", http.MethodPost, "?x=%ZZ&token=" + tok, "token=" + tok + "&some"},
		{"semicolon separator", http.MethodPost, "?lang=en;token=" + tok, "token=" + tok + "&some"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &countingVerifier{next: st}
			ep := newEndpoint(someHook(), counter, hook.WithPrefixes("", "form."))
			rec := serve(ep, request(tt.method, pageTarget+tt.query, formType, tt.body))
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400; body %s", rec.Code, rec.Body)
			}
			if n := counter.calls.Load(); n != 0 {
				t.Errorf("the store was consulted %d times, want 0", n)
			}
			if len(tok) > 0 && strings.Contains(rec.Body.String(), tok) {
				t.Errorf("body %s contains the token", rec.Body)
			}
			if got := len(decodeErrors(t, rec).Message); got != 1 {
				t.Errorf("got %d messages, want 1", got)
			}
		})
	}
}

func TestQueryWithoutTokenAllowed(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	tests := []struct {
		name   string
		method string
		query  string
		body   string
	}{
		{"get", http.MethodGet, "?lang=en", ""},
		{"post", http.MethodPost, "?lang=en", "token=" + tok + "&some"},
		{"name containing token", http.MethodPost, "?tokens=1&my_token=2", "token=" + tok + "&some"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(ep, request(tt.method, pageTarget+tt.query, formType, tt.body))
			if rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestQueryFieldsNotRead(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	rec := serve(ep, request(http.MethodPost, pageTarget+"?name=Bob&count=3", formType, "token="+tok+"&some&name=Ann"))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	values, _ := decodeMap(t, rec)["values"].(map[string]any)
	if values["name"] != "Ann" {
		t.Errorf("name = %v, want Ann from the body", values["name"])
	}
	if values["count"] != 7.0 {
		t.Errorf("count = %v, want the default 7, not the query's value", values["count"])
	}
}

func TestMethodNotAllowed(t *testing.T) {
	st, tok := sqliteStore(t)
	counter := &countingVerifier{next: st}
	ep := newEndpoint(someHook(), counter)
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE", "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			rec := serve(ep, request(method, pageTarget, formType, "token="+tok+"&some"))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405", rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != "GET, HEAD, POST" {
				t.Errorf("Allow = %q, want GET, HEAD, POST", got)
			}
			if got := len(decodeErrors(t, rec).Message); got != 1 {
				t.Errorf("got %d messages, want 1", got)
			}
		})
	}
	if n := counter.calls.Load(); n != 0 {
		t.Errorf("the store was consulted %d times, want 0", n)
	}
}

// endlessReader returns the byte 'a' until n bytes have been read.
type endlessReader struct{ n int64 }

func (r *endlessReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = 'a'
	}
	r.n -= int64(len(p))
	return len(p), nil
}

func TestBodyTooLarge(t *testing.T) {
	st, tok := sqliteStore(t)
	const limit = 1024
	prefix := "token=" + tok + "&some&pad="
	multi, multiType := multipartBody(t, [2]string{"token", tok}, [2]string{"some", ""}, [2]string{"pad", strings.Repeat("a", 2*limit)})
	tests := []struct {
		name          string
		contentType   string
		body          io.Reader
		contentLength int64
	}{
		{"form", formType, strings.NewReader(prefix + strings.Repeat("a", 2*limit)), -2},
		{"multipart", multiType, strings.NewReader(multi), -2},
		{"declared length too large", formType, strings.NewReader("token=" + tok + "&some"), 10 << 20},
		{"declared length too small", formType, strings.NewReader(prefix + strings.Repeat("a", 2*limit)), 10},
		{"unknown length", formType, io.MultiReader(strings.NewReader(prefix), &endlessReader{n: 1 << 20}), -1},
		{"unknown length multipart", multiType, strings.NewReader(multi), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &countingVerifier{next: st}
			ep := newEndpoint(someHook(), counter, hook.WithMaxBodyBytes(limit))
			req := httptest.NewRequest(http.MethodPost, pageTarget, tt.body)
			req.Header.Set("Content-Type", tt.contentType)
			if tt.contentLength != -2 {
				req.ContentLength = tt.contentLength
			}
			rec := serve(ep, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413; body %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if n := counter.calls.Load(); n != 0 {
				t.Errorf("the store was consulted %d times, want 0", n)
			}
		})
	}
}

func TestBodyAtLimit(t *testing.T) {
	st, tok := sqliteStore(t)
	body := "token=" + tok + "&some&pad="
	body += strings.Repeat("a", 1024-len(body))
	rec := postForm(newEndpoint(someHook(), st, hook.WithMaxBodyBytes(1024)), body)
	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200 for a body of exactly the limit; body %s", rec.Code, rec.Body)
	}
}

// manyParts returns a multipart body with the token, the action and n-2
// other parts, and its Content-Type.
func manyParts(t *testing.T, tok string, n int) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("token", tok)
	mw.WriteField("some", "")
	for i := 2; i < n; i++ {
		mw.WriteField(fmt.Sprintf("p%d", i), "x")
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), mw.FormDataContentType()
}

func TestTooManyParts(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	fields := "token=" + tok + "&some"
	for i := range 5000 {
		fields += fmt.Sprintf("&f%d=x", i)
	}
	multi5000, type5000 := manyParts(t, tok, 5000)
	multiAtLimit, typeAtLimit := manyParts(t, tok, hook.DefaultMaxParts)
	multiOver, typeOver := manyParts(t, tok, hook.DefaultMaxParts+1)
	tests := []struct {
		name        string
		contentType string
		body        string
		want        int
	}{
		{"5000 parts", type5000, multi5000, http.StatusRequestEntityTooLarge},
		{"one over the limit", typeOver, multiOver, http.StatusRequestEntityTooLarge},
		{"at the limit", typeAtLimit, multiAtLimit, http.StatusOK},
		{"5000 form fields", formType, fields, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(ep, request(http.MethodPost, pageTarget, tt.contentType, tt.body))
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

func TestWithMaxParts(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st, hook.WithMaxParts(3))
	tests := []struct {
		name  string
		parts int
		want  int
	}{
		{"at the limit", 3, http.StatusOK},
		{"over the limit", 4, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := manyParts(t, tok, tt.parts)
			if rec := serve(ep, request(http.MethodPost, pageTarget, ct, body)); rec.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

// TestBodyLengths posts bodies whose lengths fall on either side of the
// sizes the endpoint reads a body in, declared and chunked, straight to
// the handler and over HTTP, and checks that every byte arrives.
func TestBodyLengths(t *testing.T) {
	st, tok := sqliteStore(t)
	const limit = 200 << 10
	h := hook.Hook{Label: "Pad", Fields: []hook.Field{tokenField, {Name: "pad", Kind: hook.Text}},
		Actions: []hook.Action{echoAction("some", "pad")}}
	ep := newEndpoint(h, st, hook.WithMaxBodyBytes(limit))
	srv := httptest.NewServer(ep)
	defer srv.Close()
	prefix := "token=" + tok + "&some&pad="
	for _, total := range []int{len(prefix), 511, 512, 513, 4<<10 - 1, 4 << 10, 4<<10 + 1, 64 << 10, limit} {
		pad := strings.Repeat("p", total-len(prefix))
		body := prefix + pad
		for _, declared := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d bytes, declared %v", total, declared), func(t *testing.T) {
				check := func(t *testing.T, code int, got []byte) {
					t.Helper()
					if code != http.StatusOK {
						t.Fatalf("status = %d, want 200; body %.200s", code, got)
					}
					var answer struct {
						Values map[string]string `json:"values"`
					}
					if err := json.Unmarshal(got, &answer); err != nil {
						t.Fatal(err)
					}
					if answer.Values["pad"] != pad {
						t.Errorf("pad came back %d bytes long, want %d", len(answer.Values["pad"]), len(pad))
					}
				}
				req := request(http.MethodPost, pageTarget, formType, body)
				if !declared {
					req.ContentLength = -1
				}
				rec := serve(ep, req)
				check(t, rec.Code, rec.Body.Bytes())

				var rd io.Reader = strings.NewReader(body)
				if !declared {
					// Hiding the length makes the client send the body chunked.
					rd = io.MultiReader(rd)
				}
				resp, err := http.Post(srv.URL+"/hook.json", formType, rd)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				check(t, resp.StatusCode, got)
			})
		}
	}
}

func TestUnsupportedContentType(t *testing.T) {
	st, tok := sqliteStore(t)
	counter := &countingVerifier{next: st}
	ep := newEndpoint(someHook(), counter)
	body := "token=" + tok + "&some"
	for _, ct := range []string{"text/plain", "application/json", "application/xml", "", "not a type;;", "multipart/mixed; boundary=x"} {
		t.Run(ct, func(t *testing.T) {
			rec := serve(ep, request(http.MethodPost, pageTarget, ct, body))
			if rec.Code != http.StatusUnsupportedMediaType {
				t.Errorf("status = %d, want 415; body %s", rec.Code, rec.Body)
			}
			if got := len(decodeErrors(t, rec).Message); got != 1 {
				t.Errorf("got %d messages, want 1", got)
			}
		})
	}
	if n := counter.calls.Load(); n != 0 {
		t.Errorf("the store was consulted %d times, want 0", n)
	}
}

func TestContentTypeParameters(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	for _, ct := range []string{"application/x-www-form-urlencoded; charset=utf-8", "Application/X-WWW-Form-URLEncoded"} {
		t.Run(ct, func(t *testing.T) {
			if rec := serve(ep, request(http.MethodPost, pageTarget, ct, "token="+tok+"&some")); rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestMalformedBody(t *testing.T) {
	st, tok := sqliteStore(t)
	counter := &countingVerifier{next: st}
	good, goodType := multipartBody(t, [2]string{"token", tok}, [2]string{"some", ""}, [2]string{"name", "Ann"})
	boundary := strings.TrimPrefix(goodType, "multipart/form-data; boundary=")
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"bad percent encoding", formType, "token=" + tok + "&some&name=%ZZ"},
		{"truncated percent encoding", formType, "token=" + tok + "&some&name=%4"},
		{"semicolon separator", formType, "token=" + tok + ";some"},
		{"invalid utf-8", formType, "token=" + tok + "&some&name=%FF%FE"},
		{"invalid utf-8 in token", formType, "token=%FF" + tok + "&some"},
		{"multipart without boundary", "multipart/form-data", good},
		{"multipart wrong boundary", "multipart/form-data; boundary=other", good},
		{"multipart garbage", goodType, "this is not multipart"},
		{"multipart truncated", goodType, good[:len(good)/2]},
		{"multipart invalid utf-8", goodType, "--" + boundary + "\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n" + tok +
			"\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"some\"\r\n\r\n\r\n--" + boundary +
			"\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n\xff\xfe\r\n--" + boundary + "--\r\n"},
		{"field twice", formType, "token=" + tok + "&some&name=Ann&name=Bob"},
		{"token twice valid first", formType, "token=" + tok + "&token=wrong&some&name=Ann"},
		{"token twice wrong first", formType, "token=wrong&token=" + tok + "&some&name=Ann"},
		{"token twice empty second", formType, "token=" + tok + "&token=&some&name=Ann"},
		{"two actions", formType, "token=" + tok + "&some&other&name=Ann"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kindsHook()
			h.Actions = append(h.Actions, echoAction("other"))
			ep := newEndpoint(h, counter)
			rec := serve(ep, request(http.MethodPost, pageTarget, tt.contentType, tt.body))
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400; body %s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), tok) {
				t.Errorf("body %s contains the token", rec.Body)
			}
			if got := len(decodeErrors(t, rec).Message); got != 1 {
				t.Errorf("got %d messages, want 1", got)
			}
		})
	}
	if n := counter.calls.Load(); n != 0 {
		t.Errorf("the store was consulted %d times, want 0", n)
	}
}

func TestRepeatedFieldSameValue(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name string
		body string
	}{
		{"field", "token=" + tok + "&some&name=Ann&name=Ann"},
		{"token", "token=" + tok + "&token=" + tok + "&some&name=Ann"},
		{"action", "token=" + tok + "&some&some=x&name=Ann"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := postForm(ep, tt.body); rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestRejectionMessages(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"repeated field", "token=" + tok + "&some&name=Ann&name=Bob", "Name: given more than once with different values; send it once."},
		{"invalid utf-8", "token=" + tok + "&some&name=%FF", "Name: is not valid UTF-8 text."},
		{"repeated token", "token=" + tok + "&token=x&some", "Token: given more than once with different values; send it once."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, tt.body)
			if got := decodeErrors(t, rec).Message; !slices.Equal(got, []string{tt.want}) {
				t.Errorf("messages = %q, want [%q]", got, tt.want)
			}
		})
	}
}
