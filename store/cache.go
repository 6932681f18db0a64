package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// DefaultStaleness is the maximum age of the cached tokens, past which a
// check does not use them. Each instance reloads them at half this interval, and
// at once when PostgreSQL notifies a change, so a revoked token stops
// working on every instance within this bound even when notifications are
// lost.
const DefaultStaleness = 5 * time.Second

// Cache checks tokens against an in-memory copy of every stored token, so
// that a check of a known token does no I/O and allocates nothing. It
// implements the same Verify as [Store] and is safe for concurrent use.
//
// # Freshness
//
// The copy is reloaded every staleness/2, before a change through the same
// Store returns, and at once when PostgreSQL notifies a change made by
// any instance or by direct SQL (triggers on the token tables send the
// notifications). When reloads fail, for instance while the database is
// unreachable, the copy is used until it is staleness old; after that,
// checks fail closed with an error matching [ErrUnavailable].
//
// A token in the new format whose id is not in the copy is looked up in
// the database, so a token made a moment ago on another instance works at
// once. Other misses are answered from the copy.
type Cache struct {
	store     *Store
	staleness time.Duration
	logger    *slog.Logger

	snap   atomic.Pointer[snapshot]
	kick   chan struct{}
	stop   chan struct{}
	done   sync.WaitGroup
	reload sync.Mutex

	hits, misses, reloads, reloadErrors atomic.Int64
	notifications                       atomic.Int64
	lagNanos                            atomic.Int64
	listening                           atomic.Bool
	onLag                               func(time.Duration)
}

// snapshot is one load of every stored token.
type snapshot struct {
	loaded time.Time
	named  map[string]*cachedToken
	legacy *token.Set
}

type cachedToken struct {
	digest token.Digest
	token  Token
	// touched is when this cache last passed a use of the token to the
	// usage recorder, in Unix nanoseconds, so that most hits skip the
	// recorder's lock.
	touched atomic.Int64
}

// CacheStats are counters of a Cache.
type CacheStats struct {
	// Hits counts checks decided from memory, whatever their outcome.
	Hits int64
	// Misses counts checks of a new-format token whose id was not cached.
	Misses int64
	// Reloads counts successful reloads; ReloadErrors failed ones.
	Reloads, ReloadErrors int64
	// Notifications counts change notifications received from PostgreSQL.
	Notifications int64
	// LastLag is the time from the last notified change, by the database
	// clock, to the end of the reload it caused.
	LastLag time.Duration
	// Listening reports whether the PostgreSQL listener is connected.
	Listening bool
}

// CacheOption configures [Store.NewCache].
type CacheOption func(*Cache)

// WithStaleness sets the staleness bound. The default is
// [DefaultStaleness].
func WithStaleness(d time.Duration) CacheOption {
	return func(c *Cache) { c.staleness = d }
}

// WithLagObserver calls f with the invalidation lag of each reload caused
// by a PostgreSQL notification, for metrics.
func WithLagObserver(f func(time.Duration)) CacheOption {
	return func(c *Cache) { c.onLag = f }
}

// NewCache loads every token and starts keeping the copy fresh: a
// goroutine that reloads it, and on PostgreSQL a listener for change
// notifications. Close stops both.
func (s *Store) NewCache(ctx context.Context, opts ...CacheOption) (*Cache, error) {
	c := &Cache{store: s, staleness: DefaultStaleness, logger: s.logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	if c.staleness <= 0 {
		return nil, errors.New("store: the cache's staleness bound must be positive")
	}
	if _, err := c.load(ctx, false); err != nil {
		return nil, err
	}
	s.caches.add(c)

	c.done.Add(1)
	go c.refresh()
	if s.dsn.Backend == PostgreSQL {
		c.done.Add(1)
		go c.listen()
	}
	return c, nil
}

// Close stops the reloads and the listener.
func (c *Cache) Close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.done.Wait()
	c.store.caches.remove(c)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		Reloads: c.reloads.Load(), ReloadErrors: c.reloadErrors.Load(),
		Notifications: c.notifications.Load(), LastLag: time.Duration(c.lagNanos.Load()),
		Listening: c.listening.Load(),
	}
}

// Invalidate schedules a reload without waiting for it.
func (c *Cache) Invalidate() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Verify checks supplied for site siteID, as [Store.Verify] does, from
// memory when it can.
func (c *Cache) Verify(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	return c.verify(ctx, siteID, supplied, false)
}

// VerifySiteOnly checks supplied as [Store.VerifySiteOnly] does, from
// memory when it can.
func (c *Cache) VerifySiteOnly(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	return c.verify(ctx, siteID, supplied, siteID != "")
}

func (c *Cache) verify(ctx context.Context, siteID, supplied string, siteOnly bool) (token.Entry, error) {
	if supplied == "" {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonMissing}
	}
	now := c.store.now()
	snap := c.snap.Load()
	if now.Sub(snap.loaded) > c.staleness {
		var err error
		if snap, err = c.load(ctx, false); err != nil {
			return token.Entry{}, err
		}
	}

	if !token.HasPrefix(supplied) {
		c.hits.Add(1)
		entry, err := snap.legacy.Check(supplied)
		if err != nil && snap.legacy.Len() == 0 && len(snap.named) > 0 && errors.Is(err, token.ErrMismatch) {
			if me, ok := err.(*token.MismatchError); ok && me.Reason == token.ReasonNoneStored {
				// Named tokens exist, so the site does have tokens: the
				// supplied one is simply unknown.
				return token.Entry{}, &token.MismatchError{Reason: token.ReasonUnknown}
			}
		}
		if err == nil && siteOnly {
			return token.Entry{}, &token.MismatchError{Reason: token.ReasonWrongSite, TokenID: entry.ID}
		}
		if err == nil {
			c.store.usage.touch(entry.ID, now)
		}
		return entry, err
	}
	// A cached id is settled by the digest comparison below, which a
	// token with a wrong checksum fails too, so the checksum is computed
	// only before a database lookup.
	ct, ok := snap.named[token.CandidateID(supplied)]
	if !ok {
		if _, err := token.ParseID(supplied); err != nil {
			return token.Entry{}, &token.MismatchError{Reason: token.ReasonMalformed}
		}
		c.misses.Add(1)
		entry, err := c.store.verifyNamed(ctx, siteID, supplied, siteOnly)
		if err == nil {
			c.Invalidate()
		}
		return entry, err
	}
	c.hits.Add(1)
	sum := token.Sum(supplied)
	if subtle.ConstantTimeCompare(sum[:], ct.digest[:]) != 1 {
		// A match implies a well-formed token, since the stored one is;
		// only a failure needs the checksum, to name the reason as the
		// store does.
		if _, err := token.ParseID(supplied); err != nil {
			return token.Entry{}, &token.MismatchError{Reason: token.ReasonMalformed}
		}
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonUnknown}
	}
	if err := judge(&ct.token, siteID, now, siteOnly); err != nil {
		return token.Entry{}, err
	}
	if last := ct.touched.Load(); now.UnixNano()-last >= int64(LastUseInterval) || now.UnixNano() < last {
		ct.touched.Store(now.UnixNano())
		c.store.usage.touch(ct.token.ID, now)
	}
	return token.Entry{Digest: ct.digest, ID: ct.token.ID, Name: ct.token.Name, SiteID: ct.token.SiteID}, nil
}

// load reads every token into a new snapshot. Concurrent callers wait for
// one another, and unless force is set, a caller that finds a snapshot
// loaded moments ago uses it instead of reading again. Force is for
// reloads after a known change.
func (c *Cache) load(ctx context.Context, force bool) (*snapshot, error) {
	c.reload.Lock()
	defer c.reload.Unlock()

	if s := c.snap.Load(); s != nil && !force && c.store.now().Sub(s.loaded) <= c.staleness/4 {
		return s, nil
	}
	started := c.store.now()
	legacy, err := c.store.legacyEntries(ctx)
	if err != nil {
		c.reloadErrors.Add(1)
		return nil, err
	}
	rows, err := c.store.allTokenRows(ctx)
	if err != nil {
		c.reloadErrors.Add(1)
		return nil, err
	}
	snap := &snapshot{loaded: started, legacy: token.NewSet(legacy...), named: make(map[string]*cachedToken, len(rows))}
	for i := range rows {
		snap.named[rows[i].ID] = &cachedToken{digest: rows[i].digest, token: rows[i].Token}
	}
	c.snap.Store(snap)
	c.reloads.Add(1)
	return snap, nil
}

// forcedLoad reloads the snapshot now and logs a failure.
func (c *Cache) forcedLoad() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.staleness)
	defer cancel()
	_, err := c.load(ctx, true)
	if err != nil {
		c.logger.Warn("reloading the cached tokens failed; checks will fail closed once the copy is older than the staleness bound",
			slog.Duration("staleness", c.staleness), slog.String("error", err.Error()))
	}
	return err
}

// refresh reloads the snapshot every staleness/2 and whenever asked.
func (c *Cache) refresh() {
	defer c.done.Done()
	ticker := time.NewTicker(c.staleness / 2)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
		case <-c.kick:
		}
		c.forcedLoad()
	}
}

// judge returns the mismatch of a known token whose digest matched, or nil
// when it is valid for siteID at now. With siteOnly, an install-wide token
// is refused on a named site.
func judge(t *Token, siteID string, now time.Time, siteOnly bool) error {
	var reason token.Reason
	switch {
	case !t.Revoked.IsZero():
		reason = token.ReasonRevoked
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		reason = token.ReasonExpired
	case t.SiteID != "" && t.SiteID != siteID:
		reason = token.ReasonWrongSite
	case t.SiteID == "" && siteOnly:
		reason = token.ReasonWrongSite
	default:
		return nil
	}
	return &token.MismatchError{Reason: reason, TokenID: t.ID, TokenName: t.Name}
}

// cacheSet is the set of caches over one Store, reloaded after its own
// changes.
type cacheSet struct {
	mu     sync.Mutex
	caches map[*Cache]struct{}
}

func (cs *cacheSet) add(c *Cache) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.caches == nil {
		cs.caches = make(map[*Cache]struct{})
	}
	cs.caches[c] = struct{}{}
}

func (cs *cacheSet) remove(c *Cache) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.caches, c)
}

// invalidate reloads every cache over the store before returning, after a
// change made through it, so that a check right after a revocation in the
// same process rejects the token. A cache whose reload fails is asked to reload
// again soon, and its staleness bound still holds.
func (cs *cacheSet) invalidate() {
	cs.mu.Lock()
	caches := make([]*Cache, 0, len(cs.caches))
	for c := range cs.caches {
		caches = append(caches, c)
	}
	cs.mu.Unlock()
	for _, c := range caches {
		if c.forcedLoad() != nil {
			c.Invalidate()
		}
	}
}
