package hook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
)

func TestBearerHeaderAccepted(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleStore(t, dsn, newLifecycleClock())
		tok, info := lifecycleCreate(t, st, "gateway", "", 0)
		ep := lifecycleEndpoint(st, st)
		tests := []struct {
			name   string
			header string
			body   string
		}{
			{"Bearer", "Bearer " + tok, "some"},
			{"lower case", "bearer " + tok, "some"},
			{"upper case", "BEARER " + tok, "some"},
			{"mixed case", "bEaReR " + tok, "some"},
			{"several spaces", "Bearer   " + tok, "some"},
			{"same token in body", "Bearer " + tok, "token=" + tok + "&some"},
			{"empty token in body", "Bearer " + tok, "token=&some"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := lifecyclePost(ep, lifecycleClient, tt.body, tt.header)

				lifecycleStatus(t, rec, http.StatusOK)
				if got := lifecycleTokenID(t, rec); got != info.ID {
					t.Errorf("token id = %q, expected %q", got, info.ID)
				}
			})
		}
	})
}

// TestBearerHeaderRejected checks that a malformed Authorization header is
// rejected with 401 without asking the store: the counting verifier must
// not be called, even when the body carries the right token.
func TestBearerHeaderRejected(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleStore(t, dsn, newLifecycleClock())
		tok, _ := lifecycleCreate(t, st, "gateway", "", 0)
		counter := &lifecycleCounter{next: st}
		ep := lifecycleEndpoint(counter, st)
		// padded is a token68 of exactly maxAuthorization+1 bytes with the
		// scheme, which only its length makes malformed.
		padded := "Bearer " + tok + strings.Repeat("=", 1025-len("Bearer ")-len(tok))
		tests := []struct {
			name    string
			headers []string
			body    string
		}{
			{"no space", []string{"Bearer" + tok}, "some"},
			{"scheme only", []string{"Bearer"}, "some"},
			{"scheme and space", []string{"Bearer "}, "some"},
			{"empty token", []string{"Bearer    "}, "some"},
			{"Token Bearer", []string{"Token Bearer " + tok}, "some"},
			{"tab", []string{"Bearer\t" + tok}, "some"},
			{"tab after space", []string{"Bearer \t" + tok}, "some"},
			{"trailing space", []string{"Bearer " + tok + " "}, "some"},
			{"two tokens", []string{"Bearer " + tok + " " + tok}, "some"},
			{"Basic", []string{"Basic Z2F0ZXdheTpzZWNyZXQ="}, "some"},
			{"Basic with body token", []string{"Basic Z2F0ZXdheTpzZWNyZXQ="}, "token=" + tok + "&some"},
			{"empty header", []string{""}, "token=" + tok + "&some"},
			{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, "some"},
			{"over 1024 bytes", []string{padded}, "some"},
			{"non-ASCII", []string{"Bearer " + tok + "é"}, "some"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls := counter.calls.Load()
				before := len(lifecycleEvents(t, st))

				rec := lifecyclePost(ep, lifecycleClient, tt.body, tt.headers...)

				lifecycleStatus(t, rec, http.StatusUnauthorized)
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Errorf("401 response has no WWW-Authenticate header")
				}
				if n := counter.calls.Load() - calls; n != 0 {
					t.Errorf("verifier called %d times for a malformed header, expected 0", n)
				}
				if strings.Contains(rec.Body.String(), tok) {
					t.Errorf("response %q contains the token", rec.Body.String())
				}
				events := lifecycleEvents(t, st)
				if len(events) != before+1 {
					t.Fatalf("%d audit events after the request, expected %d", len(events), before+1)
				}
				if events[0].Code != audit.CodeMismatch {
					t.Errorf("event code = %q, expected %q", events[0].Code, audit.CodeMismatch)
				}
			})
		}
	})
}

// TestBearerHeaderLengthLimit checks both sides of the 1024-byte limit: a
// header of 1024 bytes reaches the verifier, one of 1025 does not.
func TestBearerHeaderLengthLimit(t *testing.T) {
	st := lifecycleStore(t, testdb.SQLite(t), newLifecycleClock())
	tok, _ := lifecycleCreate(t, st, "gateway", "", 0)
	counter := &lifecycleCounter{next: st}
	ep := lifecycleEndpoint(counter, st)
	for _, size := range []int{1024, 1025} {
		header := "Bearer " + tok + strings.Repeat("=", size-len("Bearer ")-len(tok))
		calls := counter.calls.Load()

		rec := lifecyclePost(ep, lifecycleClient, "some", header)

		lifecycleStatus(t, rec, http.StatusUnauthorized)
		want := int64(0)
		if size <= 1024 {
			want = 1
		}
		if n := counter.calls.Load() - calls; n != want {
			t.Errorf("header of %d bytes: verifier called %d times, expected %d", size, n, want)
		}
	}
}

func TestBearerHeaderAndBodyDiffer(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleStore(t, dsn, newLifecycleClock())
		tok, _ := lifecycleCreate(t, st, "gateway", "", 0)
		other, _ := lifecycleCreate(t, st, "other", "", 0)
		counter := &lifecycleCounter{next: st}
		ep := lifecycleEndpoint(counter, st)
		tests := []struct {
			name   string
			header string
			body   string
		}{
			{"two valid tokens", "Bearer " + tok, "token=" + other + "&some"},
			{"wrong body token", "Bearer " + tok, "token=wrong&some"},
			{"wrong header token", "Bearer wrong", "token=" + tok + "&some"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls := counter.calls.Load()
				before := len(lifecycleEvents(t, st))

				rec := lifecyclePost(ep, lifecycleClient, tt.body, tt.header)

				lifecycleStatus(t, rec, http.StatusBadRequest)
				if !strings.Contains(rec.Body.String(), "different tokens") {
					t.Errorf("response %q does not say that the tokens differ", rec.Body.String())
				}
				for _, secret := range []string{tok, other} {
					if strings.Contains(rec.Body.String(), secret) {
						t.Errorf("response %q contains a token", rec.Body.String())
					}
				}
				if n := counter.calls.Load() - calls; n != 0 {
					t.Errorf("verifier called %d times, expected 0", n)
				}
				if n := len(lifecycleEvents(t, st)) - before; n != 0 {
					t.Errorf("%d audit events for a 400 response, expected 0", n)
				}
			})
		}
	})
}

// TestBearerHeaderOverHTTP sends the header through a real HTTP server on
// the loopback interface, where the server parses it from the wire.
func TestBearerHeaderOverHTTP(t *testing.T) {
	st := lifecycleStore(t, testdb.SQLite(t), newLifecycleClock())
	tok, info := lifecycleCreate(t, st, "gateway", "", 0)
	srv := httptest.NewServer(lifecycleEndpoint(st, st))
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		headers []string
		status  int
	}{
		{"bearer", []string{"bearer " + tok}, http.StatusOK},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, http.StatusUnauthorized},
		{"Basic", []string{"Basic Z2F0ZXdheTpzZWNyZXQ="}, http.StatusUnauthorized},
		{"tab", []string{"Bearer\t" + tok}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(lifecycleContext(t), http.MethodPost, srv.URL, strings.NewReader("some"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, h := range tt.headers {
				req.Header.Add("Authorization", h)
			}

			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("POST failed: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, expected %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusOK && !strings.Contains(string(body), info.ID) {
				t.Errorf("response %s does not name token %s", body, info.ID)
			}
		})
	}
}
