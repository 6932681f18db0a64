package hook_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// lifecycleThrottled is a store, a token in it, and an endpoint that
// throttles failures with the default limits on an injected clock.
type lifecycleThrottled struct {
	st      *store.Store
	tok     string
	clock   *lifecycleClock
	counter *lifecycleCounter
	ep      *hook.Endpoint
}

func newLifecycleThrottled(t *testing.T, dsn string, opts ...hook.Option) *lifecycleThrottled {
	t.Helper()
	clock := newLifecycleClock()
	st := lifecycleStore(t, dsn, clock)
	tok, _ := lifecycleCreate(t, st, "gateway", "", 0)
	throttle := hook.NewThrottle(hook.DefaultFailures, hook.DefaultWindow)
	throttle.SetClock(clock.Now)
	// The tarpit holds requests in real time, which the injected clock
	// does not govern; its own tests are in throttle_hold_test.go.
	throttle.SetTarpit(0)
	counter := &lifecycleCounter{next: st}
	ep := lifecycleEndpoint(counter, st, append([]hook.Option{hook.WithThrottle(throttle)}, opts...)...)
	return &lifecycleThrottled{st: st, tok: tok, clock: clock, counter: counter, ep: ep}
}

// fail posts a wrong token from remote and asserts that it gets 401.
func (l *lifecycleThrottled) fail(t *testing.T, remote string, auth ...string) {
	t.Helper()
	lifecycleStatus(t, lifecyclePost(l.ep, remote, "token=wrong-token&some", auth...), http.StatusUnauthorized)
}

// lockOut posts DefaultFailures wrong tokens from remote.
func (l *lifecycleThrottled) lockOut(t *testing.T, remote string, auth ...string) {
	t.Helper()
	for range hook.DefaultFailures {
		l.fail(t, remote, auth...)
	}
}

// good posts the right token from remote.
func (l *lifecycleThrottled) good(remote string, auth ...string) *httptest.ResponseRecorder {
	return lifecyclePost(l.ep, remote, "token="+l.tok+"&some", auth...)
}

// lifecycleRetryAfter asserts a 429 response and returns its Retry-After in
// seconds.
func lifecycleRetryAfter(t *testing.T, rec *httptest.ResponseRecorder) time.Duration {
	t.Helper()
	lifecycleStatus(t, rec, http.StatusTooManyRequests)
	header := rec.Header().Get("Retry-After")
	seconds, err := strconv.Atoi(header)
	if err != nil {
		t.Fatalf("Retry-After = %q, expected a number of seconds", header)
	}
	if seconds < 1 || time.Duration(seconds)*time.Second > hook.DefaultWindow {
		t.Errorf("Retry-After = %d seconds, expected 1 to %s", seconds, hook.DefaultWindow)
	}
	return time.Duration(seconds) * time.Second
}

func TestThrottleLockout(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		l := newLifecycleThrottled(t, dsn)

		l.lockOut(t, lifecycleClient)

		if n := l.counter.calls.Load(); n != hook.DefaultFailures {
			t.Errorf("verifier called %d times for %d failures, expected %d", n, hook.DefaultFailures, hook.DefaultFailures)
		}
		for i := range 3 {
			rec := l.good(lifecycleClient)
			lifecycleRetryAfter(t, rec)
			if !strings.Contains(rec.Body.String(), "Too many failed authentications") {
				t.Errorf("429 response #%d = %q, expected it to say why", i, rec.Body.String())
			}
		}
		lifecycleRetryAfter(t, lifecyclePost(l.ep, lifecycleClient, "token=wrong&some", "Bearer "+l.tok))
		if n := l.counter.calls.Load(); n != hook.DefaultFailures {
			t.Errorf("verifier called %d times in all, expected %d: a locked-out client must not reach it", n, hook.DefaultFailures)
		}

		codes := lifecycleCodes(t, l.st)
		if codes[audit.CodeThrottled] != 1 {
			t.Errorf("%d throttling events, expected 1", codes[audit.CodeThrottled])
		}
		if codes[audit.CodeMismatch] != hook.DefaultFailures {
			t.Errorf("%d mismatch events, expected %d", codes[audit.CodeMismatch], hook.DefaultFailures)
		}
		for _, ev := range lifecycleEvents(t, l.st) {
			if ev.Code == audit.CodeThrottled && !strings.Contains(ev.SupplementaryDatum, "127.0.0.1") {
				t.Errorf("throttling event detail = %q, expected it to name the client", ev.SupplementaryDatum)
			}
		}
	})
}

// TestThrottleRetryAfterHonoured checks that a client may try again after
// the Retry-After delay, and that a client that keeps failing at that pace
// stays in one lockout.
func TestThrottleRetryAfterHonoured(t *testing.T) {
	l := newLifecycleThrottled(t, testdb.SQLite(t))
	l.lockOut(t, lifecycleClient)
	wait := lifecycleRetryAfter(t, l.good(lifecycleClient))

	for i := range 5 {
		l.clock.Advance(wait)
		l.fail(t, lifecycleClient)
		wait = lifecycleRetryAfter(t, l.good(lifecycleClient))
		if t.Failed() {
			t.Fatalf("stopped at retry %d", i)
		}
	}

	if n := lifecycleCodes(t, l.st)[audit.CodeThrottled]; n != 1 {
		t.Errorf("%d throttling events for one steady client, expected 1", n)
	}
	l.clock.Advance(wait)
	lifecycleStatus(t, l.good(lifecycleClient), http.StatusOK)
}

func TestThrottleResetAfterWindow(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		l := newLifecycleThrottled(t, dsn)
		l.lockOut(t, lifecycleClient)
		lifecycleRetryAfter(t, l.good(lifecycleClient))

		l.clock.Advance(hook.DefaultWindow)

		lifecycleStatus(t, l.good(lifecycleClient), http.StatusOK)
		l.lockOut(t, lifecycleClient)
		lifecycleRetryAfter(t, l.good(lifecycleClient))
		if n := lifecycleCodes(t, l.st)[audit.CodeThrottled]; n != 2 {
			t.Errorf("%d throttling events for two lockouts, expected 2", n)
		}
	})
}

func TestThrottleBelowLimit(t *testing.T) {
	l := newLifecycleThrottled(t, testdb.SQLite(t))
	for range hook.DefaultFailures - 1 {
		l.fail(t, lifecycleClient)
	}

	lifecycleStatus(t, l.good(lifecycleClient), http.StatusOK)

	if n := lifecycleCodes(t, l.st)[audit.CodeThrottled]; n != 0 {
		t.Errorf("%d throttling events below the limit, expected 0", n)
	}
}

func TestThrottleOtherAddressUnaffected(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		l := newLifecycleThrottled(t, dsn)
		l.lockOut(t, "127.0.0.1:40001")

		lifecycleStatus(t, l.good("127.0.0.2:40001"), http.StatusOK)
		l.fail(t, "127.0.0.2:40002")
		lifecycleRetryAfter(t, l.good("127.0.0.1:40002"))
	})
}

func TestThrottleAddressKeys(t *testing.T) {
	tests := []struct {
		name    string
		lock    []string // connection addresses that fail in turn
		blocked []string // addresses that must get 429 afterwards
		allowed []string // addresses that must get 200 afterwards
	}{
		{"IPv6 same /64", []string{"[fd00:1:2:3::1]:1", "[fd00:1:2:3::2]:2", "[fd00:1:2:3:ffff:ffff:ffff:ffff]:3"},
			[]string{"[fd00:1:2:3::abcd]:4", "[fd00:1:2:3:8000::1]:5"},
			[]string{"[fd00:1:2:4::1]:6", "[fd00:1:2:2:ffff:ffff:ffff:ffff]:7", "[::1]:8"}},
		{"IPv4 mapped", []string{"[::ffff:127.0.0.5]:1"},
			[]string{"127.0.0.5:2"},
			[]string{"127.0.0.6:3", "[::ffff:127.0.0.6]:4"}},
		{"IPv4 exact", []string{"127.0.0.5:1"},
			[]string{"[::ffff:127.0.0.5]:2"},
			[]string{"127.0.0.4:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLifecycleThrottled(t, testdb.SQLite(t))

			for i := range hook.DefaultFailures {
				l.fail(t, tt.lock[i%len(tt.lock)])
			}

			for _, addr := range tt.blocked {
				if rec := l.good(addr); rec.Code != http.StatusTooManyRequests {
					t.Errorf("%s after the lockout: status %d, expected 429", addr, rec.Code)
				}
			}
			for _, addr := range tt.allowed {
				if rec := l.good(addr); rec.Code != http.StatusOK {
					t.Errorf("%s after the lockout: status %d, expected 200", addr, rec.Code)
				}
			}
		})
	}
}

func TestForwardedForClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.1.0/24"), netip.MustParsePrefix("::1/128")}
	clientAddr := hook.ForwardedFor(trusted)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted ignores header", "127.0.0.9:1", []string{"127.0.0.7"}, "127.0.0.9"},
		{"untrusted IPv6 ignores header", "[fd00::9]:1", []string{"127.0.0.7"}, "fd00::9"},
		{"trusted without header", "127.0.0.1:1", nil, "127.0.0.1"},
		{"trusted one hop", "127.0.0.1:1", []string{"127.0.0.7"}, "127.0.0.7"},
		{"rightmost untrusted hop", "127.0.0.1:1", []string{"127.0.0.5, 127.0.0.6, 127.0.0.7"}, "127.0.0.7"},
		{"skips trusted hops", "127.0.0.1:1", []string{"127.0.0.5, 127.0.0.7, 127.0.1.2, 127.0.1.3"}, "127.0.0.7"},
		{"spoofed leftmost hop", "127.0.0.1:1", []string{"127.0.1.9, 127.0.0.7"}, "127.0.0.7"},
		{"two header lines", "127.0.0.1:1", []string{"127.0.0.5", "127.0.0.7, 127.0.1.2"}, "127.0.0.7"},
		{"no spaces", "127.0.0.1:1", []string{"127.0.0.5,127.0.0.7"}, "127.0.0.7"},
		{"only trusted hops", "127.0.0.1:1", []string{"127.0.1.2, 127.0.1.3"}, "127.0.0.1"},
		{"malformed hop", "127.0.0.1:1", []string{"127.0.0.5, not-an-address"}, "127.0.0.1"},
		{"hop with port", "127.0.0.1:1", []string{"127.0.0.7:443"}, "127.0.0.1"},
		{"empty header", "127.0.0.1:1", []string{""}, "127.0.0.1"},
		{"trusted IPv6 proxy", "[::1]:1", []string{"fd00::7"}, "fd00::7"},
		{"mapped hop", "127.0.0.1:1", []string{"::ffff:127.0.0.7"}, "127.0.0.7"},
		{"trusted mapped proxy", "[::ffff:127.0.0.1]:1", []string{"127.0.0.7"}, "127.0.0.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/lifecycle.json", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}

			if got := clientAddr(req); got != tt.want {
				t.Errorf("client address = %q, expected %q", got, tt.want)
			}
		})
	}
}

// TestThrottleForwardedFor checks that clients behind a trusted proxy get
// buckets of their own, and that a client that connects directly cannot
// escape its bucket by sending X-Forwarded-For.
func TestThrottleForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	l := newLifecycleThrottled(t, testdb.SQLite(t), hook.WithClientAddr(hook.ForwardedFor(trusted)))
	proxy := "127.0.0.1:40001"

	t.Run("behind proxy", func(t *testing.T) {
		for range hook.DefaultFailures {
			req := lifecyclePostXFF(l, proxy, "127.0.0.9", "token=wrong&some")
			lifecycleStatus(t, req, http.StatusUnauthorized)
		}

		lifecycleRetryAfter(t, lifecyclePostXFF(l, proxy, "127.0.0.9", "token="+l.tok+"&some"))
		lifecycleStatus(t, lifecyclePostXFF(l, proxy, "127.0.0.10", "token="+l.tok+"&some"), http.StatusOK)
	})
	t.Run("direct with spoofed header", func(t *testing.T) {
		for i := range hook.DefaultFailures {
			spoofed := "127.0.0." + strconv.Itoa(100+i)
			lifecycleStatus(t, lifecyclePostXFF(l, "127.0.0.20:40001", spoofed, "token=wrong&some"), http.StatusUnauthorized)
		}

		lifecycleRetryAfter(t, lifecyclePostXFF(l, "127.0.0.20:40002", "127.0.0.11", "token="+l.tok+"&some"))
		lifecycleStatus(t, lifecyclePostXFF(l, proxy, "127.0.0.11", "token="+l.tok+"&some"), http.StatusOK)
	})
	t.Run("audit names forwarded client", func(t *testing.T) {
		found := false
		for _, ev := range lifecycleEvents(t, l.st) {
			if ev.Code == audit.CodeThrottled && strings.HasPrefix(ev.SupplementaryDatum, "127.0.0.9 ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no throttling event names the forwarded client 127.0.0.9")
		}
	})
}

func lifecyclePostXFF(l *lifecycleThrottled, remote, xff, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/lifecycle.json", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", xff)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	l.ep.ServeHTTP(rec, req)
	return rec
}
