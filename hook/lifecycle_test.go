package hook_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// lifecycleStart is the time the injected clocks start at, a whole second
// because PostgreSQL keeps times to the microsecond.
var lifecycleStart = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// lifecycleClient is the connection address of the requests in these
// tests. httptest requests go to the handler directly, so it is only a
// string.
const lifecycleClient = "127.0.0.1:40001"

// lifecycleClock is a clock that moves only when a test moves it.
type lifecycleClock struct {
	mu  sync.Mutex
	now time.Time
}

func newLifecycleClock() *lifecycleClock { return &lifecycleClock{now: lifecycleStart} }

func (c *lifecycleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lifecycleClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *lifecycleClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lifecycleBackends runs f once per backend, as a subtest, with the DSN of
// a new, empty database.
func lifecycleBackends(t *testing.T, f func(t *testing.T, dsn string)) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f(t, b.New(t))
		})
	}
}

func lifecycleContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lifecycleStore opens and migrates the store at dsn with clock as its
// clock, and closes it when t ends.
func lifecycleStore(t testing.TB, dsn string, clock *lifecycleClock) *store.Store {
	t.Helper()
	ctx := lifecycleContext(t)
	st, err := store.Open(ctx, dsn, store.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("store.Open(%q) failed: %v", dsn, err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate failed: %v", err)
	}
	return st
}

func lifecycleCreate(t testing.TB, st *store.Store, name, siteID string, expiresIn time.Duration) (string, store.Token) {
	t.Helper()
	tok, info, err := st.CreateToken(lifecycleContext(t), name, siteID, expiresIn)
	if err != nil {
		t.Fatalf("CreateToken(%q, site %q) failed: %v", name, siteID, err)
	}
	return tok, info
}

// lifecycleCounter passes calls to a Verifier and counts them.
type lifecycleCounter struct {
	next  hook.Verifier
	calls atomic.Int64
}

func (c *lifecycleCounter) Verify(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	c.calls.Add(1)
	return c.next.Verify(ctx, siteID, supplied)
}

// lifecycleHook is a hook with a token field and the action "some", which
// returns the id of the token that authenticated it.
func lifecycleHook() hook.Hook {
	return hook.Hook{
		Label:  "Lifecycle hook",
		Fields: []hook.Field{{Name: "token", Kind: hook.AuthToken, Title: "Token", Description: "The authentication token", Required: true}},
		Actions: []hook.Action{{
			Name:  "some",
			Label: "Some",
			Success: func(_ context.Context, s *hook.Submission) (any, error) {
				return map[string]any{"status": 0, "token_id": s.TokenID}, nil
			},
		}},
	}
}

// lifecycleEndpoint returns an endpoint for lifecycleHook that checks
// tokens with v, audits to st and logs nothing.
func lifecycleEndpoint(v hook.Verifier, st *store.Store, opts ...hook.Option) *hook.Endpoint {
	base := []hook.Option{hook.WithAudit(st), hook.WithLogger(slog.New(slog.DiscardHandler))}
	return hook.New(lifecycleHook(), v, append(base, opts...)...)
}

// lifecyclePost posts body, URL-encoded, from the connection address
// remote, with an Authorization header for each of auth.
func lifecyclePost(h http.Handler, remote, body string, auth ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/lifecycle.json", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remote
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// lifecycleStatus asserts the status of rec.
func lifecycleStatus(t testing.TB, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d, expected %d; body %s", rec.Code, want, strings.TrimSpace(rec.Body.String()))
	}
}

// lifecycleTokenID returns the token id of a successful response.
func lifecycleTokenID(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		TokenID string `json:"token_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	return body.TokenID
}

// lifecycleEvents returns the gs.auth.token audit events of st, newest
// first.
func lifecycleEvents(t testing.TB, st *store.Store) []audit.Event {
	t.Helper()
	events, err := st.AuditEvents(lifecycleContext(t), store.AuditQuery{Subsystem: audit.Subsystem, Limit: 1000})
	if err != nil {
		t.Fatalf("AuditEvents failed: %v", err)
	}
	return events
}

// lifecycleCodes counts the audit events of st by code.
func lifecycleCodes(t testing.TB, st *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range lifecycleEvents(t, st) {
		out[e.Code]++
	}
	return out
}

func TestHookAuditNamesKnownToken(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock()
		st := lifecycleStore(t, dsn, clock)
		ep := lifecycleEndpoint(st, st, hook.WithSite(hook.Site{ID: "site-a"}))
		expired, expiredInfo := lifecycleCreate(t, st, "nightly-sync", "site-a", time.Minute)
		revoked, revokedInfo := lifecycleCreate(t, st, "mail-gateway", "", 0)
		if _, err := st.RevokeToken(lifecycleContext(t), revokedInfo.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		other, otherInfo := lifecycleCreate(t, st, "list-sync", "site-b", 0)
		unknown, _, err := token.New()
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)

		tests := []struct {
			name       string
			tok        string
			code       string
			id, detail string // of the token the event must name; empty for none
		}{
			{"expired", expired, audit.CodeExpired, expiredInfo.ID, `expired token "nightly-sync"`},
			{"revoked", revoked, audit.CodeRevoked, revokedInfo.ID, `revoked token "mail-gateway"`},
			{"other site", other, audit.CodeWrongSite, otherInfo.ID, `token "list-sync"`},
			{"unknown", unknown, audit.CodeMismatch, "", ""},
			{"bad checksum", unknown[:len(unknown)-1] + "_", audit.CodeMismatch, "", ""},
			{"legacy format unknown", "k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i", audit.CodeMismatch, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(lifecycleEvents(t, st))

				rec := lifecyclePost(ep, lifecycleClient, "token="+tt.tok+"&some")

				lifecycleStatus(t, rec, http.StatusUnauthorized)
				events := lifecycleEvents(t, st)
				if len(events) != before+1 {
					t.Fatalf("%d audit events after the request, expected %d", len(events), before+1)
				}
				ev := events[0]
				if ev.Code != tt.code {
					t.Errorf("event code = %q, expected %q", ev.Code, tt.code)
				}
				if ev.SiteID != "site-a" {
					t.Errorf("event site = %q, expected site-a", ev.SiteID)
				}
				if strings.Contains(ev.SupplementaryDatum, tt.tok) || strings.Contains(ev.InstanceDatum, tt.tok) {
					t.Errorf("event %+v contains the presented token", ev)
				}
				if tt.id == "" {
					if ev.SupplementaryDatum != "127.0.0.1" {
						t.Errorf("event detail = %q, expected the client address alone", ev.SupplementaryDatum)
					}
					return
				}
				for _, want := range []string{tt.detail, tt.id, "127.0.0.1"} {
					if !strings.Contains(ev.SupplementaryDatum, want) {
						t.Errorf("event detail = %q, expected it to contain %q", ev.SupplementaryDatum, want)
					}
				}
			})
		}
	})
}

func TestHookInstallWideTokensRejected(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleStore(t, dsn, newLifecycleClock())
		legacy, err := token.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceLegacyToken(lifecycleContext(t), legacy); err != nil {
			t.Fatalf("ReplaceLegacyToken failed: %v", err)
		}
		wide, wideInfo := lifecycleCreate(t, st, "wide", "", 0)
		own, ownInfo := lifecycleCreate(t, st, "own", "site-a", 0)
		strict := lifecycleEndpoint(st, st, hook.WithSite(hook.Site{ID: "site-a"}), hook.WithInstallWideTokens(false))
		lenient := lifecycleEndpoint(st, st, hook.WithSite(hook.Site{ID: "site-a"}))
		wideSite := lifecycleEndpoint(st, st, hook.WithInstallWideTokens(false))

		tests := []struct {
			name   string
			ep     http.Handler
			tok    string
			status int
			id     string // the accepted token's id, or the rejected token's id in the event
		}{
			{"strict own token", strict, own, http.StatusOK, ownInfo.ID},
			{"strict install-wide token", strict, wide, http.StatusUnauthorized, wideInfo.ID},
			{"strict legacy token", strict, legacy, http.StatusUnauthorized, store.LegacyTokenID},
			{"lenient install-wide token", lenient, wide, http.StatusOK, wideInfo.ID},
			{"lenient legacy token", lenient, legacy, http.StatusOK, store.LegacyTokenID},
			{"install-wide site keeps install-wide token", wideSite, wide, http.StatusOK, wideInfo.ID},
			{"install-wide site keeps legacy token", wideSite, legacy, http.StatusOK, store.LegacyTokenID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(lifecycleEvents(t, st))

				rec := lifecyclePost(tt.ep, lifecycleClient, "token="+tt.tok+"&some")

				lifecycleStatus(t, rec, tt.status)
				events := lifecycleEvents(t, st)
				if tt.status == http.StatusOK {
					if got := lifecycleTokenID(t, rec); got != tt.id {
						t.Errorf("token id = %q, expected %q", got, tt.id)
					}
					if len(events) != before {
						t.Errorf("%d audit events after an accepted token, expected %d", len(events), before)
					}
					return
				}
				if len(events) != before+1 {
					t.Fatalf("%d audit events after the request, expected %d", len(events), before+1)
				}
				if events[0].Code != audit.CodeWrongSite {
					t.Errorf("event code = %q, expected %q", events[0].Code, audit.CodeWrongSite)
				}
				if !strings.Contains(events[0].SupplementaryDatum, tt.id) {
					t.Errorf("event detail = %q, expected it to name token %s", events[0].SupplementaryDatum, tt.id)
				}
			})
		}
	})
}

// TestHookRejectedInstallWideNotUsed checks that a token the endpoint
// rejects, because the site accepts no install-wide tokens, is not counted
// as used: 'list' shows last use so that an administrator can tell whether
// a token, such as GroupServer's plain-text one, is still needed. It checks
// the store as verifier and the in-memory cache that serve uses.
func TestHookRejectedInstallWideNotUsed(t *testing.T) {
	for _, useCache := range []bool{false, true} {
		name := "store"
		if useCache {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			lifecycleBackends(t, func(t *testing.T, dsn string) {
				lifecycleRejectedNotUsed(t, dsn, useCache)
			})
		})
	}
}

func lifecycleRejectedNotUsed(t *testing.T, dsn string, useCache bool) {
	clock := newLifecycleClock()
	st := lifecycleStore(t, dsn, clock)
	wide, wideInfo := lifecycleCreate(t, st, "wide", "", 0)
	legacy, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceLegacyToken(lifecycleContext(t), legacy); err != nil {
		t.Fatalf("ReplaceLegacyToken failed: %v", err)
	}
	var verifier hook.Verifier = st
	var cache *store.Cache
	if useCache {
		if cache, err = st.NewCache(lifecycleContext(t)); err != nil {
			t.Fatalf("NewCache failed: %v", err)
		}
		t.Cleanup(cache.Close)
		verifier = cache
	}
	strict := lifecycleEndpoint(verifier, st, hook.WithSite(hook.Site{ID: "site-a"}), hook.WithInstallWideTokens(false))

	lifecycleStatus(t, lifecyclePost(strict, lifecycleClient, "token="+wide+"&some"), http.StatusUnauthorized)
	lifecycleStatus(t, lifecyclePost(strict, lifecycleClient, "token="+legacy+"&some"), http.StatusUnauthorized)
	if cache != nil {
		cache.Close()
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close failed: %v", err)
	}

	reopened := lifecycleStore(t, dsn, clock)
	tokens, err := reopened.ListTokens(lifecycleContext(t), "", true)
	if err != nil {
		t.Fatalf("ListTokens failed: %v", err)
	}
	for _, tk := range tokens {
		if tk.ID == wideInfo.ID && !tk.LastUsed.IsZero() {
			t.Errorf("rejected install-wide token has LastUsed %s, expected zero", tk.LastUsed)
		}
	}
	_, last, err := reopened.LegacyTokenStatus(lifecycleContext(t))
	if err != nil {
		t.Fatalf("LegacyTokenStatus failed: %v", err)
	}
	if !last.IsZero() {
		t.Errorf("rejected legacy token has last use %s, expected zero", last)
	}
}

// TestHookRotationLifecycle follows one client's token through creation,
// rotation with a grace period, its end, an emergency rotation and
// revocation, through the endpoint.
func TestHookRotationLifecycle(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock()
		st := lifecycleStore(t, dsn, clock)
		ctx := lifecycleContext(t)
		ep := lifecycleEndpoint(st, st, hook.WithSite(hook.Site{ID: "site-a"}))
		accepted := func(t *testing.T, tok, id string) {
			t.Helper()
			rec := lifecyclePost(ep, lifecycleClient, "token="+tok+"&some")
			lifecycleStatus(t, rec, http.StatusOK)
			if got := lifecycleTokenID(t, rec); got != id {
				t.Errorf("token id = %q, expected %q", got, id)
			}
		}
		rejected := func(t *testing.T, tok, code string) {
			t.Helper()
			rec := lifecyclePost(ep, lifecycleClient, "token="+tok+"&some")
			lifecycleStatus(t, rec, http.StatusUnauthorized)
			if got := lifecycleEvents(t, st)[0].Code; got != code {
				t.Errorf("event code = %q, expected %q", got, code)
			}
		}

		first, firstInfo := lifecycleCreate(t, st, "mail-gateway", "site-a", 0)
		accepted(t, first, firstInfo.ID)

		second, secondInfo, _, err := st.RotateToken(ctx, "mail-gateway", "site-a", time.Hour, 0)
		if err != nil {
			t.Fatalf("RotateToken(grace 1h) failed: %v", err)
		}
		accepted(t, first, firstInfo.ID)
		accepted(t, second, secondInfo.ID)

		clock.Advance(time.Hour)
		rejected(t, first, audit.CodeExpired)
		accepted(t, second, secondInfo.ID)

		third, thirdInfo, _, err := st.RotateToken(ctx, "mail-gateway", "site-a", 0, 0)
		if err != nil {
			t.Fatalf("RotateToken(grace 0) failed: %v", err)
		}
		rejected(t, second, audit.CodeExpired)
		accepted(t, third, thirdInfo.ID)

		if _, err := st.RevokeToken(ctx, "mail-gateway", "site-a"); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		rejected(t, third, audit.CodeRevoked)
	})
}
