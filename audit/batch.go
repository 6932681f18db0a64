package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrQueueFull is returned by [Batcher.WriteAuditEvent] when the queue has
// no room. The Batcher has then logged the event at error level.
var ErrQueueFull = errors.New("audit queue full")

// ErrClosed is returned by [Batcher.WriteAuditEvent] after Close.
var ErrClosed = errors.New("audit batcher closed")

// BatchWriter stores several events at once.
type BatchWriter interface {
	Writer
	// WriteAuditEvents inserts the events in one transaction: all or
	// none. It returns an error matching [ErrDuplicateID] when an id is
	// taken.
	WriteAuditEvents(ctx context.Context, events []Event) error
}

// Defaults of a [Batcher].
const (
	DefaultQueueSize = 10_000
	DefaultMaxBatch  = 100
	DefaultMaxDelay  = 50 * time.Millisecond
)

// writeTimeout bounds one write of a batch or of a spool replay.
const writeTimeout = 10 * time.Second

// Retry delays of a batch whose write failed: the first, doubling up to
// the second.
const (
	batchRetryMin = 100 * time.Millisecond
	batchRetryMax = 5 * time.Second
)

// Batcher writes audit events off the request path: WriteAuditEvent only
// queues the event, and a goroutine writes the queue in batches of up to
// [DefaultMaxBatch] events, or whatever has arrived [DefaultMaxDelay] after
// the first. A slow or unreachable database therefore never delays a
// response.
//
// With a [Spool] (see [WithSpool]), a batch that cannot be written, and an
// event that finds the queue full, go to the spool file, and a goroutine
// replays the spool into the database every second until it is empty, so
// no event is lost, even across a restart. Without one, a failed batch is
// retried with growing delays while the queue fills, and an event that
// finds the queue full is logged with all its fields at error level,
// counted as dropped, and refused with [ErrQueueFull]. Close writes what is
// queued.
type Batcher struct {
	writer    BatchWriter
	logger    *slog.Logger
	queueSize int
	maxBatch  int
	maxDelay  time.Duration
	spool     *Spool
	dbDown    atomic.Bool
	replayed  atomic.Int64
	spooled   atomic.Int64
	replayNow chan struct{}
	replayEnd chan struct{}

	// mu guards queue, head and closed. The queue is a slice that grows
	// with its length, up to queueSize. A channel of that capacity would be
	// allocated whole, and the garbage collector would scan all of it on
	// every cycle, even when it is empty.
	mu    sync.Mutex
	queue []Event
	// head is the index in queue of the next event to write.
	head   int
	closed bool
	// ready contains a signal when events were queued since the writer
	// last took a batch. Close closes it.
	ready chan struct{}
	stop  chan struct{}
	done  chan struct{}
	// writes is the parent context of every database write. Close
	// cancels it when its own context ends, to cut a slow write short.
	writes       context.Context
	cancelWrites context.CancelFunc

	written, dropped, failedBatches atomic.Int64
	// abandoned is how many events the writer dropped when Close gave
	// up. The writer sets it before it ends, and Close reads it after.
	abandoned int
}

// BatcherStats are counters of a Batcher.
type BatcherStats struct {
	// Queued is the number of events waiting to be written.
	Queued int
	// Written counts events stored.
	Written int64
	// Dropped counts events that found the queue full, or were still
	// queued when Close gave up.
	Dropped int64
	// FailedBatches counts failed batch writes, each retried or spooled.
	FailedBatches int64
	// Spooled counts events written to the spool; InSpool is how many wait
	// there now; Replayed counts those later stored from it.
	Spooled, Replayed int64
	InSpool           int
}

// BatcherOption configures [NewBatcher].
type BatcherOption func(*Batcher)

// WithBatchLogger sets the logger. The default discards.
func WithBatchLogger(l *slog.Logger) BatcherOption {
	return func(b *Batcher) { b.logger = l }
}

// WithQueueSize sets the queue's capacity. The default is
// [DefaultQueueSize].
func WithQueueSize(n int) BatcherOption {
	return func(b *Batcher) { b.queueSize = n }
}

// WithSpool keeps events that cannot be written in s and replays them.
// The Batcher replays what an earlier process left in s at once.
func WithSpool(s *Spool) BatcherOption {
	return func(b *Batcher) { b.spool = s }
}

// NewBatcher starts a Batcher that writes to w.
func NewBatcher(w BatchWriter, opts ...BatcherOption) *Batcher {
	b := &Batcher{writer: w, logger: slog.New(slog.DiscardHandler), queueSize: DefaultQueueSize,
		maxBatch: DefaultMaxBatch, maxDelay: DefaultMaxDelay,
		ready: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		replayNow: make(chan struct{}, 1), replayEnd: make(chan struct{})}
	b.writes, b.cancelWrites = context.WithCancel(context.Background())
	for _, o := range opts {
		o(b)
	}
	if b.queueSize <= 0 {
		b.queueSize = DefaultQueueSize
	}
	go b.run()
	if b.spool != nil {
		go b.replayLoop()
		b.kickReplay()
	} else {
		close(b.replayEnd)
	}
	return b
}

// WriteAuditEvent queues e, which must have its id set, and returns at
// once.
func (b *Batcher) WriteAuditEvent(ctx context.Context, e Event) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.drop(ctx, e, "the audit batcher is closed")
		return ErrClosed
	}
	if len(b.queue)-b.head < b.queueSize {
		b.push(e)
		// Sent under mu, because Close closes ready under mu.
		select {
		case b.ready <- struct{}{}:
		default:
		}
		b.mu.Unlock()
		return nil
	}
	// The spool is written under mu too, so that Close, which takes mu
	// first, never returns while an event it accepted is still being
	// written there.
	spooled := b.spool != nil && b.toSpool([]Event{e}) == nil
	b.mu.Unlock()
	if spooled {
		return nil
	}
	b.drop(ctx, e, "the audit queue is full")
	return ErrQueueFull
}

// push appends e to the queue. When the backing array is full and at
// least half of it has already been taken, the waiting events move to its
// start instead of growing it, so that a queue in steady use does not
// grow without bound.
func (b *Batcher) push(e Event) {
	if len(b.queue) == cap(b.queue) && b.head >= len(b.queue)/2 {
		n := copy(b.queue, b.queue[b.head:])
		clear(b.queue[n:])
		b.queue = b.queue[:n]
		b.head = 0
	}
	b.queue = append(b.queue, e)
}

func (b *Batcher) drop(ctx context.Context, e Event, why string) {
	b.dropped.Add(1)
	b.logger.ErrorContext(ctx, "audit event dropped: "+why, e.LogAttrs()...)
}

// Stats returns the batcher's counters.
func (b *Batcher) Stats() BatcherStats {
	st := BatcherStats{Queued: b.queued(), Written: b.written.Load(), Dropped: b.dropped.Load(),
		FailedBatches: b.failedBatches.Load(), Spooled: b.spooled.Load(), Replayed: b.replayed.Load()}
	if b.spool != nil {
		st.InSpool = b.spool.Len()
	}
	return st
}

// Close stops accepting events and writes the queued ones, retrying failed
// batches until ctx ends. Events still unwritten then are logged and
// counted as dropped, and Close returns an error with their number.
// When ctx ends, a write in progress is cancelled, and with a spool the
// unwritten events go there for the next start.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	// Under mu, so that no WriteAuditEvent sends on it afterwards.
	close(b.ready)
	b.mu.Unlock()

	release := context.AfterFunc(ctx, b.cancelWrites)
	defer release()
	defer b.cancelWrites()
	select {
	case <-b.done:
	case <-ctx.Done():
	}
	close(b.stop)
	<-b.done
	<-b.replayEnd
	if b.spool != nil {
		b.replay()
		if n := b.spool.Len(); n > 0 {
			b.logger.Warn("audit events remain in the spool; the next start replays them",
				slog.Int("events", n), slog.String("spool", b.spool.Path()))
		}
	}
	if b.abandoned > 0 {
		return fmt.Errorf("audit: %d events were not written before the deadline; each was logged", b.abandoned)
	}
	return nil
}

func (b *Batcher) run() {
	defer close(b.done)
	batch := make([]Event, 0, b.maxBatch)
	for {
		open := b.wait()
		batch = b.take(batch[:0])
		if len(batch) == 0 {
			if !open {
				return
			}
			continue
		}
		if rest, ok := b.flush(batch); !ok {
			b.abandon(rest)
			return
		}
	}
}

// wait returns when a batch should be taken: a full batch is queued, or
// maxDelay has passed since the first event of a smaller one, or Close
// was called, which it reports by returning false.
func (b *Batcher) wait() (open bool) {
	if b.queued() == 0 {
		if _, ok := <-b.ready; !ok {
			return false
		}
	}
	if b.queued() >= b.maxBatch {
		return true
	}
	timer := time.NewTimer(b.maxDelay)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-b.ready:
			if !ok {
				return false
			}
			if b.queued() >= b.maxBatch {
				return true
			}
		case <-timer.C:
			return true
		}
	}
}

func (b *Batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) - b.head
}

// take moves up to maxBatch events from the head of the queue to batch.
// Once the queue is empty, a large backing array left by a burst is let
// go, so that memory follows the queue's length.
func (b *Batcher) take(batch []Event) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue)-b.head, b.maxBatch)
	batch = append(batch, b.queue[b.head:b.head+n]...)
	clear(b.queue[b.head : b.head+n])
	b.head += n
	if b.head == len(b.queue) {
		b.queue, b.head = b.queue[:0], 0
		if cap(b.queue) > 4*b.maxBatch {
			b.queue = nil
		}
	}
	return batch
}

// flush writes a batch, or spools it when the database is known to be
// down or the write fails. Without a spool it retries until it succeeds or
// Close gives up. It reports whether the batch was stored or spooled and,
// when it was not, returns the events still unwritten.
func (b *Batcher) flush(batch []Event) ([]Event, bool) {
	if b.spool != nil && b.dbDown.Load() && b.toSpool(batch) == nil {
		return nil, true
	}
	delay := batchRetryMin
	for {
		var err error
		before := len(batch)
		batch, err = b.writeBatch(batch)
		b.written.Add(int64(before - len(batch)))
		if err == nil {
			return nil, true
		}
		b.failedBatches.Add(1)
		if b.spool != nil {
			b.dbDown.Store(true)
			if b.toSpool(batch) == nil {
				b.logger.Warn("writing audit events failed; they are kept in the spool until the database is reachable",
					slog.Int("events", len(batch)), slog.String("spool", b.spool.Path()), slog.String("error", err.Error()))
				return nil, true
			}
		}
		b.logger.Warn("writing audit events failed; retrying", slog.Int("events", len(batch)),
			slog.Duration("retry_in", delay), slog.String("error", err.Error()))
		select {
		case <-b.stop:
			return batch, false
		case <-time.After(delay):
		}
		delay = min(delay*2, batchRetryMax)
	}
}

// writeBatch writes the batch in one transaction. When an id is taken, it
// writes the events one by one instead, giving a taken id a new one. It
// returns the events still unwritten, so that a retry does not store any
// event twice.
func (b *Batcher) writeBatch(batch []Event) ([]Event, error) {
	ctx, cancel := context.WithTimeout(b.writes, writeTimeout)
	defer cancel()
	err := b.writer.WriteAuditEvents(ctx, batch)
	if err == nil {
		return batch[:0], nil
	}
	if !errors.Is(err, ErrDuplicateID) {
		return batch, err
	}
	for i := range batch {
		if err := b.writeOne(ctx, &batch[i]); err != nil {
			return batch[i:], err
		}
	}
	return batch[:0], nil
}

func (b *Batcher) writeOne(ctx context.Context, e *Event) error {
	for attempt := 0; attempt < DefaultAttempts; attempt++ {
		err := b.writer.WriteAuditEvent(ctx, *e)
		if !errors.Is(err, ErrDuplicateID) {
			return err
		}
		id, idErr := NewID()
		if idErr != nil {
			return idErr
		}
		e.ID = id
	}
	return fmt.Errorf("audit: event id taken %d times in a row", DefaultAttempts)
}

// abandon logs and counts the events that could not be written before
// Close gave up: the batch in hand and whatever is still queued.
func (b *Batcher) abandon(batch []Event) {
	b.mu.Lock()
	rest := b.queue[b.head:]
	b.queue, b.head = nil, 0
	b.mu.Unlock()
	for _, e := range append(batch, rest...) {
		b.drop(context.Background(), e, "the database could not be reached before shutdown")
	}
	b.abandoned = len(batch) + len(rest)
}

// toSpool appends events to the spool, logging a failure.
func (b *Batcher) toSpool(events []Event) error {
	if err := b.spool.Append(events); err != nil {
		b.logger.Error("writing audit events to the spool failed", slog.String("spool", b.spool.Path()), slog.String("error", err.Error()))
		return err
	}
	b.spooled.Add(int64(len(events)))
	b.kickReplay()
	return nil
}

func (b *Batcher) kickReplay() {
	select {
	case b.replayNow <- struct{}{}:
	default:
	}
}

// replayInterval is how often the spool is replayed while it is not empty.
const replayInterval = time.Second

// replayLoop replays the spool every second while events wait in it.
func (b *Batcher) replayLoop() {
	defer close(b.replayEnd)
	ticker := time.NewTicker(replayInterval)
	defer ticker.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.done:
			return
		case <-ticker.C:
		case <-b.replayNow:
			// A spool written a moment ago is most likely written because
			// the database is down, so wait for the tick before trying.
			if b.dbDown.Load() {
				continue
			}
		}
		if b.spool.Len() > 0 {
			b.replay()
		}
	}
}

// replay stores the spooled events. An id that is taken means the event
// was stored before, by a write whose acknowledgement was lost, so it is
// skipped.
func (b *Batcher) replay() {
	n, err := b.spool.Replay(func(batch []Event) error {
		ctx, cancel := context.WithTimeout(b.writes, writeTimeout)
		defer cancel()
		err := b.writer.WriteAuditEvents(ctx, batch)
		if !errors.Is(err, ErrDuplicateID) {
			return err
		}
		for _, e := range batch {
			if err := b.writer.WriteAuditEvent(ctx, e); err != nil && !errors.Is(err, ErrDuplicateID) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.dbDown.Store(true)
		b.logger.Debug("replaying the audit spool failed; trying again later", slog.String("error", err.Error()))
		return
	}
	b.dbDown.Store(false)
	if n > 0 {
		b.replayed.Add(int64(n))
		b.logger.Info("stored audit events from the spool", slog.Int("events", n), slog.String("spool", b.spool.Path()))
	}
}
