package hook_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// exampleVerifier accepts one token, as a store holding it would.
type exampleVerifier struct{ set *token.Set }

func (v exampleVerifier) Verify(_ context.Context, _ string, supplied string) (token.Entry, error) {
	return v.set.Check(supplied)
}

func newExampleVerifier(tok string) exampleVerifier {
	return exampleVerifier{set: token.NewSet(token.Entry{Digest: token.Sum(tok), ID: "example"})}
}

func post(h http.Handler, form url.Values) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "http://hooks.example/some-hook.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.Join(strings.Fields(string(body)), " ")
}

// A hook with a token field, an optional text field and one action.
func Example() {
	ep := hook.New(hook.Hook{
		Label: "Some hook",
		Fields: []hook.Field{
			{Name: "token", Kind: hook.AuthToken, Title: "Token", Description: "The authentication token", Required: true},
			{Name: "subject", Kind: hook.TextLine, Title: "Subject", Description: "The subject", Default: "(none)"},
		},
		Actions: []hook.Action{{
			Name:  "some",
			Label: "Some",
			Success: func(ctx context.Context, s *hook.Submission) (any, error) {
				return map[string]string{"subject": s.String("subject")}, nil
			},
		}},
	}, newExampleVerifier("fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL"), hook.WithLogger(slog.New(slog.DiscardHandler)))

	fmt.Println(post(ep, url.Values{"token": {"fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL"}, "some": {""}, "subject": {"Hello"}}))
	fmt.Println(post(ep, url.Values{"token": {"wrong"}, "some": {""}}))
	// Output:
	// 200 { "subject": "Hello" }
	// 401 { "status": 100, "message": [ "Authentication failed: the token is missing or not valid for this site." ] }
}

// A custom failure handler that records token failures with LogAuthError,
// as GroupServer hooks call log_auth_error, and then answers in its own way.
func ExampleLogAuthError() {
	ep := hook.New(hook.Hook{
		Label:  "Count",
		Fields: []hook.Field{{Name: "token", Kind: hook.AuthToken, Title: "Token", Required: true}, {Name: "n", Kind: hook.Int, Title: "Number", Required: true}},
		Actions: []hook.Action{{
			Name: "count",
			Success: func(ctx context.Context, s *hook.Submission) (any, error) {
				return map[string]int{"next": s.Int("n") + 1}, nil
			},
			Failure: func(w http.ResponseWriter, r *http.Request, errs []error) {
				hook.LogAuthError(r.Context(), r, errs)
				if !hook.IsAuthError(errs) {
					fmt.Println("field errors:", len(errs))
				}
				hook.WriteErrors(w, r, errs)
			},
		}},
	}, newExampleVerifier("fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL"), hook.WithLogger(slog.New(slog.DiscardHandler)))

	fmt.Println(post(ep, url.Values{"token": {"fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL"}, "count": {""}, "n": {"forty"}}))
	// Output:
	// field errors: 1
	// 400 { "status": 100, "message": [ "Number: must be a whole number, such as 42" ] }
}

// Hooks mounted on a mux, behind the access log, with the field prefix of
// GroupServer's forms.
func ExampleNew_mux() {
	v := newExampleVerifier("fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL")
	logger := slog.New(slog.DiscardHandler)
	ping := hook.Hook{
		Label:  "Ping",
		Fields: []hook.Field{{Name: "token", Kind: hook.AuthToken, Title: "Token", Required: true}},
		Actions: []hook.Action{{Name: "ping", Label: "Ping", Success: func(context.Context, *hook.Submission) (any, error) {
			return map[string]string{"reply": "pong"}, nil
		}}},
	}
	mux := http.NewServeMux()
	mux.Handle("/ping.json", hook.New(ping, v, hook.WithLogger(logger)))
	mux.Handle("/form/ping.json", hook.New(ping, v, hook.WithLogger(logger), hook.WithPrefix("form.")))
	srv := httptest.NewServer(hook.AccessLog(logger)(mux))
	defer srv.Close()

	resp, err := http.PostForm(srv.URL+"/form/ping.json", url.Values{
		"form.token":        {"fRx32k9QpZ0wYt7mN4vB8cD1eG6hJ2aL"},
		"form.actions.ping": {""},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), strings.Join(strings.Fields(string(body)), " "))
	// Output:
	// 200 application/json { "reply": "pong" }
}
