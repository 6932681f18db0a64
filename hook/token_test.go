package hook_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

func TestTokenAccepted(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st, hook.WithSite(hook.Site{ID: "site1"}))
	rec := postForm(ep, "token="+tok+"&some")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	d := decodeMap(t, rec)
	if d["action"] != "some" {
		t.Errorf("action = %v, want some", d["action"])
	}
	if d["token_id"] != "legacy" {
		t.Errorf("token_id = %v, want legacy", d["token_id"])
	}
	if d["site_id"] != "site1" {
		t.Errorf("site_id = %v, want site1", d["site_id"])
	}
}

func TestTokenRejected(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name string
		body string
	}{
		{"absent", "some&name=Ann"},
		{"empty", "token=&some&name=Ann"},
		{"wrong", "token=wrong&some&name=Ann"},
		{"case swapped", "token=" + swapCase(tok) + "&some&name=Ann"},
		{"prefix of token", "token=" + tok[:len(tok)-1] + "&some&name=Ann"},
		{"token with suffix", "token=" + tok + "x&some&name=Ann"},
		{"trailing newline", "token=" + tok + "%0A&some&name=Ann"},
		{"leading space", "token=%20" + tok + "&some&name=Ann"},
		{"zero width space", "token=" + url.QueryEscape("\u200b"+tok) + "&some&name=Ann"},
		{"zero width joiner inside", "token=" + url.QueryEscape(tok[:5]+"\u200d"+tok[5:]) + "&some&name=Ann"},
		{"byte order mark", "token=" + url.QueryEscape("\ufeff"+tok) + "&some&name=Ann"},
		{"too long", "token=" + strings.Repeat(tok, 40) + "&some&name=Ann"},
		{"other fields wrong too", "token=wrong&some&count=abc&flag=maybe"},
		{"other fields wrong and no token", "some&count=abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, tt.body)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("WWW-Authenticate header is missing")
			}
			got := decodeErrors(t, rec)
			if got.Status != hook.StatusValidationError {
				t.Errorf("status field = %d, want %d", got.Status, hook.StatusValidationError)
			}
			if want := []string{hook.AuthFailedMessage}; !slices.Equal(got.Message, want) {
				t.Errorf("messages = %q, want %q", got.Message, want)
			}
		})
	}
}

func TestTokenNoneStored(t *testing.T) {
	ctx := testContext(t)
	st, err := store.Open(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	unknown, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ep := newEndpoint(someHook(), st, hook.WithAudit(st))
	rec := postForm(ep, "token="+unknown+"&some")
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401 from a store without tokens", rec.Code)
	}
	if n := len(auditRows(t, st)); n != 1 {
		t.Errorf("wrote %d audit rows, want 1", n)
	}
}

func TestTokenMultipart(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	tests := []struct {
		name   string
		fields [][2]string
		want   int
	}{
		{"valid", [][2]string{{"token", tok}, {"some", ""}}, http.StatusOK},
		{"action first", [][2]string{{"some", ""}, {"token", tok}}, http.StatusOK},
		{"wrong", [][2]string{{"token", "wrong"}, {"some", ""}}, http.StatusUnauthorized},
		{"empty", [][2]string{{"token", ""}, {"some", ""}}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.fields...)
			rec := serve(ep, request(http.MethodPost, pageTarget, ct, body))
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}

func TestTokenReadOnEveryRequest(t *testing.T) {
	st, old := sqliteStore(t)
	ep := newEndpoint(someHook(), st)
	fresh, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceLegacyToken(testContext(t), fresh); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"new token", fresh, http.StatusOK},
		{"old token", old, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := postForm(ep, "token="+tt.token+"&some"); rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

// swapCase returns s with upper and lower case letters swapped.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, s)
}

// fixedVerifier returns the same result for every token.
type fixedVerifier struct {
	entry token.Entry
	err   error
}

func (f fixedVerifier) Verify(context.Context, string, string) (token.Entry, error) {
	return f.entry, f.err
}

func TestTokenStoreUnavailable(t *testing.T) {
	closed, tok := sqliteStore(t)
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    hook.Verifier
	}{
		{"closed sqlite store", closed},
		{"verifier error", fixedVerifier{err: errors.New("connection refused")}},
		{"deadline exceeded", fixedVerifier{err: context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			ep := newEndpoint(someHook(), tt.v, hook.WithLogger(logger))
			rec := postForm(ep, "token="+tok+"&some")
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503; body %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("Retry-After header is missing")
			}
			if got := len(decodeErrors(t, rec).Message); got != 1 {
				t.Errorf("got %d messages, want 1", got)
			}
			if strings.Contains(rec.Body.String(), tok) {
				t.Errorf("body %s contains the token", rec.Body)
			}
			if n := logs.count(t, "ERROR", "checking a token failed, so the request was refused"); n != 1 {
				t.Errorf("logged %d errors about the store, want 1; log:\n%s", n, logs)
			}
		})
	}
}

func TestTokenStoreUnavailablePostgres(t *testing.T) {
	tests := []struct {
		name       string
		breakStore func(t *testing.T, st *store.Store, dsn string)
	}{
		{"closed store", func(t *testing.T, st *store.Store, dsn string) {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"tables dropped", func(t *testing.T, st *store.Store, dsn string) {
			ctx := testContext(t)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("connecting to PostgreSQL failed: %v", err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "DROP TABLE option, gs_auth_token CASCADE"); err != nil {
				t.Fatalf("dropping the token tables failed: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := testdb.Postgres(t)
			st, tok := openStore(t, dsn)
			ep := newEndpoint(someHook(), st)
			if rec := postForm(ep, "token="+tok+"&some"); rec.Code != http.StatusOK {
				t.Fatalf("status before the store broke = %d, want 200", rec.Code)
			}
			tt.breakStore(t, st, dsn)
			for _, body := range []string{"token=" + tok + "&some", "token=wrong&some"} {
				rec := postForm(ep, body)
				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("status = %d, want 503; body %s", rec.Code, rec.Body)
				}
				if strings.Contains(rec.Body.String(), tok) {
					t.Errorf("body %s contains the token", rec.Body)
				}
			}
		})
	}
}

func TestTokenFieldErrorsOnlyWhenValid(t *testing.T) {
	st, tok := sqliteStore(t)
	ep := newEndpoint(kindsHook(), st)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"valid token", "token=" + tok + "&some&count=abc", http.StatusBadRequest},
		{"wrong token", "token=wrong&some&count=abc", http.StatusUnauthorized},
		{"no token", "some&count=abc", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postForm(ep, tt.body)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusUnauthorized && strings.Contains(rec.Body.String(), "Count") {
				t.Errorf("401 body %s mentions another field", rec.Body)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error
		wantCode int
		wantMsgs []string
	}{
		{"mismatch alone", []error{&token.MismatchError{Reason: token.ReasonUnknown}}, http.StatusUnauthorized, []string{hook.AuthFailedMessage}},
		{"mismatch among others", []error{&hook.FieldError{Title: "A", Problem: "bad"}, &token.MismatchError{}}, http.StatusUnauthorized, []string{hook.AuthFailedMessage}},
		{"field errors", []error{&hook.FieldError{Title: "A", Problem: "bad"}, &hook.FieldError{Title: "B", Problem: "worse"}}, http.StatusBadRequest, []string{"A: bad", "B: worse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hook.WriteErrors(w, r, tt.errs) }),
				request(http.MethodPost, pageTarget, "", ""))
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if got := decodeErrors(t, rec).Message; !slices.Equal(got, tt.wantMsgs) {
				t.Errorf("messages = %q, want %q", got, tt.wantMsgs)
			}
			if hasChallenge := rec.Header().Get("WWW-Authenticate") != ""; hasChallenge != (tt.wantCode == http.StatusUnauthorized) {
				t.Errorf("WWW-Authenticate = %q with status %d", rec.Header().Get("WWW-Authenticate"), rec.Code)
			}
		})
	}
}
