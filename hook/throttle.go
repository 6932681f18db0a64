package hook

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of [NewThrottle].
const (
	// DefaultFailures is how many failed authentications an address may
	// make in DefaultWindow before it is locked out.
	DefaultFailures = 10
	// DefaultWindow is the window of DefaultFailures.
	DefaultWindow = time.Minute
	// DefaultMaxClients bounds the addresses a Throttle tracks.
	DefaultMaxClients = 100_000
	// DefaultTarpit is the longest a locked-out client's request is held
	// before its 429, so that a flood from one address gets few responses
	// and costs little.
	DefaultTarpit = time.Second
	// maxTarpitted bounds the requests held at once, so that holding them
	// cannot exhaust the server; beyond it, 429 is sent at once.
	maxTarpitted = 1024
)

// Throttle limits failed authentications per client address with a token
// bucket: an address may fail a burst of failures, after which it is
// locked out until the bucket refills at failures per window. A locked-out
// client's requests are not checked, and each is held for up to
// [DefaultTarpit] before its 429. A lockout
// ends when the bucket is full again, so a steady attacker causes one
// lockout, not one per refill. IPv6 addresses are counted by their /64
// prefix, because one host usually has a whole /64 to choose from. A
// Throttle is safe for concurrent use, and one Throttle may serve many
// endpoints.
type Throttle struct {
	limit      rate.Limit
	burst      int
	window     time.Duration
	now        func() time.Time
	maxClients int

	mu      sync.Mutex
	clients map[clientKey]*clientState

	tarpit time.Duration
	held   chan struct{}
	// tracked mirrors len(clients), so that checking a client when no
	// client has failed takes no lock and parses no address.
	tracked atomic.Int64

	lockouts, refused atomic.Int64
}

// ThrottleStats are counters of a Throttle.
type ThrottleStats struct {
	// Clients is the number of addresses tracked now.
	Clients int
	// Lockouts counts lockouts started.
	Lockouts int64
	// Refused counts requests refused while locked out.
	Refused int64
}

// Stats returns the throttle's counters.
func (t *Throttle) Stats() ThrottleStats {
	t.mu.Lock()
	n := len(t.clients)
	t.mu.Unlock()
	return ThrottleStats{Clients: n, Lockouts: t.lockouts.Load(), Refused: t.refused.Load()}
}

type clientState struct {
	limiter  *rate.Limiter
	locked   bool
	lastSeen time.Time
}

// NewThrottle returns a Throttle that locks out an address after failures
// failed authentications within window.
func NewThrottle(failures int, window time.Duration) *Throttle {
	if failures <= 0 || window <= 0 {
		panic("hook: NewThrottle needs a positive number of failures and window")
	}
	return &Throttle{
		limit:      rate.Limit(float64(failures) / window.Seconds()),
		burst:      failures,
		window:     window,
		now:        time.Now,
		maxClients: DefaultMaxClients,
		clients:    make(map[clientKey]*clientState),
		tarpit:     DefaultTarpit,
		held:       make(chan struct{}, maxTarpitted),
	}
}

// SetTarpit sets the longest a locked-out client's request is held before
// its 429; zero sends the 429 at once. The default is [DefaultTarpit].
func (t *Throttle) SetTarpit(d time.Duration) { t.tarpit = d }

// hold delays a locked-out client's response by the tarpit, or less when
// it may retry sooner, unless too many requests are held already or ctx
// ends. It returns the time left until the client may try again.
func (t *Throttle) hold(ctx context.Context, addr string, wait time.Duration) time.Duration {
	d := min(t.tarpit, wait)
	if d <= 0 {
		return wait
	}
	select {
	case t.held <- struct{}{}:
	default:
		return wait
	}
	defer func() { <-t.held }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	if left, blocked := t.remaining(addr); blocked {
		return left
	}
	return 0
}

// SetClock replaces the throttle's clock, for tests.
func (t *Throttle) SetClock(now func() time.Time) { t.now = now }

// Blocked reports whether the client at addr is locked out, and if so how
// long until it may try again.
func (t *Throttle) Blocked(addr string) (time.Duration, bool) {
	wait, blocked := t.remaining(addr)
	if blocked {
		t.refused.Add(1)
	}
	return wait, blocked
}

// remaining returns the time until the client at addr may try again, by
// the throttle's clock, and whether it is locked out now.
func (t *Throttle) remaining(addr string) (time.Duration, bool) {
	if t.tracked.Load() == 0 {
		return 0, false
	}
	key := throttleKey(addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.clients[key]
	if !ok {
		return 0, false
	}
	tokens := st.limiter.TokensAt(now)
	if tokens >= float64(t.burst) {
		st.locked = false
	}
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(t.limit) * float64(time.Second))), true
}

// Failure counts a failed authentication by the client at addr and
// reports whether it started a lockout.
func (t *Throttle) Failure(addr string) bool {
	key := throttleKey(addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.clients[key]
	if !ok {
		t.makeRoom(now)
		st = &clientState{limiter: rate.NewLimiter(t.limit, t.burst)}
		t.clients[key] = st
		t.tracked.Store(int64(len(t.clients)))
	}
	st.lastSeen = now
	st.limiter.AllowN(now, 1)
	if st.limiter.TokensAt(now) < 1 && !st.locked {
		st.locked = true
		t.lockouts.Add(1)
		return true
	}
	return false
}

// makeRoom drops clients whose buckets are full again, then clients not
// seen for a window, and when that is still not enough, arbitrary clients
// until half the room is free.
//
// NOTE: forgetting a client resets its count, so an attacker able to use
// more than DefaultMaxClients addresses (outside one IPv6 /64) can evade
// the limit for some of them.
func (t *Throttle) makeRoom(now time.Time) {
	if len(t.clients) < t.maxClients {
		return
	}
	for k, st := range t.clients {
		if !st.locked && st.limiter.TokensAt(now) >= float64(t.burst) {
			delete(t.clients, k)
		}
	}
	if len(t.clients) < t.maxClients {
		return
	}
	cutoff := now.Add(-t.window)
	for k, st := range t.clients {
		if st.lastSeen.Before(cutoff) {
			delete(t.clients, k)
		}
	}
	for k := range t.clients {
		if len(t.clients) < t.maxClients/2 {
			return
		}
		delete(t.clients, k)
	}
}

// clientKey identifies a client for throttling: the address as a /32 for
// IPv4, its /64 for IPv6, or, for an address that does not parse, the
// text itself. A comparable value, so that looking a client up allocates
// nothing.
type clientKey struct {
	prefix netip.Prefix
	text   string
}

// throttleKey returns the key of an address.
func throttleKey(addr string) clientKey {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return clientKey{text: addr}
	}
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return clientKey{text: addr}
	}
	return clientKey{prefix: p}
}

// ForwardedFor returns a client address function for servers behind
// proxies. When the connection comes from one of the trusted prefixes, it
// walks X-Forwarded-For from the right, past trusted hops, and returns the
// first untrusted address; otherwise, or when the header is absent or
// malformed, it returns the connection's address. A client can put
// anything in the header, so only hops added by trusted proxies count.
func ForwardedFor(trusted []netip.Prefix) func(*http.Request) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		remote := RemoteHost(r)
		addr, err := netip.ParseAddr(remote)
		if err != nil || !isTrusted(addr) {
			return remote
		}
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				return remote
			}
			if !isTrusted(hop) {
				return hop.Unmap().String()
			}
		}
		return remote
	}
}
