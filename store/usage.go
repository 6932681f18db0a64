package store

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// LastUseInterval is how often, at most, one instance records the last use
// of one token. Recording every request would turn each check into a write.
const LastUseInterval = time.Minute

// usageQueueSize bounds the last uses waiting to be written. When it is
// full, a use is dropped: the next one a minute later records it.
const usageQueueSize = 1024

type usage struct {
	id   string
	when time.Time
}

// usageRecorder writes last uses in the background, off the request path.
type usageRecorder struct {
	store   *Store
	mu      sync.Mutex
	written map[string]time.Time
	queue   chan usage
	closed  bool
	started bool
	done    chan struct{}
	dropped atomic.Int64
}

func newUsageRecorder(s *Store) *usageRecorder {
	return &usageRecorder{store: s, written: make(map[string]time.Time), queue: make(chan usage, usageQueueSize), done: make(chan struct{})}
}

// touch records that token id was used at now, unless this recorder queued
// a use of it less than LastUseInterval before.
func (u *usageRecorder) touch(id string, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	if last, ok := u.written[id]; ok && now.Sub(last) < LastUseInterval && !now.Before(last) {
		return
	}
	u.written[id] = now
	if !u.started {
		u.started = true
		go u.run()
	}
	select {
	case u.queue <- usage{id: id, when: now}:
	default:
		u.dropped.Add(1)
	}
}

func (u *usageRecorder) run() {
	defer close(u.done)
	for x := range u.queue {
		u.write(x)
	}
}

func (u *usageRecorder) write(x usage) {
	s := u.store
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO gs_auth_token_use (token_id, last_used_at) VALUES (?, ?)
		ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at`), x.id, s.timeArg(x.when))
	if err != nil {
		s.logger.Warn("recording the last use of a token failed", slog.String("token_id", x.id), slog.String("error", s.opError("record use in", err).Error()))
	}
}

// close writes the queued uses and stops the writer.
func (u *usageRecorder) close() {
	if u == nil {
		return
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	started := u.started
	close(u.queue)
	u.mu.Unlock()
	if started {
		<-u.done
	}
}
