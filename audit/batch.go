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

// Retry delays of a batch whose write failed: the first, doubling up to
// the second.
const (
	batchRetryMin = 100 * time.Millisecond
	batchRetryMax = 5 * time.Second
)

// Batcher writes audit events off the request path: WriteAuditEvent only
// queues the event, and a goroutine writes the queue in batches of up to
// MaxBatch events, or whatever has arrived MaxDelay after the first. A slow
// or unreachable database therefore never delays an answer.
//
// A failed batch is retried with growing delays, and the queue fills
// meanwhile. When the queue is full, WriteAuditEvent logs the event with
// all its fields at error level, counts it as dropped, and returns
// [ErrQueueFull]. Close writes what is queued.
type Batcher struct {
	writer   BatchWriter
	logger   *slog.Logger
	queue    chan Event
	maxBatch int
	maxDelay time.Duration

	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
	done   chan struct{}

	written, dropped, failedBatches atomic.Int64
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
	// FailedBatches counts failed batch writes, each retried.
	FailedBatches int64
}

// NewBatcher starts a Batcher that writes to w, with a queue of queueSize
// events (zero or less means [DefaultQueueSize]), batches of
// [DefaultMaxBatch] and a delay of [DefaultMaxDelay]. logger may be nil.
func NewBatcher(w BatchWriter, logger *slog.Logger, queueSize int) *Batcher {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Batcher{writer: w, logger: logger, queue: make(chan Event, queueSize),
		maxBatch: DefaultMaxBatch, maxDelay: DefaultMaxDelay,
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// WriteAuditEvent queues e, which must have its id set, and returns at
// once.
func (b *Batcher) WriteAuditEvent(ctx context.Context, e Event) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.drop(ctx, e, "the audit batcher is closed")
		return ErrClosed
	}
	select {
	case b.queue <- e:
		return nil
	default:
		b.drop(ctx, e, "the audit queue is full")
		return ErrQueueFull
	}
}

func (b *Batcher) drop(ctx context.Context, e Event, why string) {
	b.dropped.Add(1)
	b.logger.ErrorContext(ctx, "audit event dropped: "+why, e.LogAttrs()...)
}

// Stats returns the batcher's counters.
func (b *Batcher) Stats() BatcherStats {
	return BatcherStats{Queued: len(b.queue), Written: b.written.Load(), Dropped: b.dropped.Load(), FailedBatches: b.failedBatches.Load()}
}

// Close stops accepting events and writes the queued ones, retrying failed
// batches until ctx ends. Events still unwritten then are logged and
// counted as dropped.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()

	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
	}
	close(b.stop)
	<-b.done
	if n := b.Stats().Queued; n > 0 {
		return fmt.Errorf("audit: %d events were not written before the deadline", n)
	}
	return nil
}

func (b *Batcher) run() {
	defer close(b.done)
	batch := make([]Event, 0, b.maxBatch)
	for {
		e, ok := <-b.queue
		if !ok {
			return
		}
		batch = append(batch[:0], e)
		timer := time.NewTimer(b.maxDelay)
	fill:
		for len(batch) < b.maxBatch {
			select {
			case e, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		if !b.flush(batch) {
			b.abandon(batch)
			return
		}
	}
}

// flush writes a batch, retrying until it succeeds or Close gives up. It
// reports whether the batch was written.
func (b *Batcher) flush(batch []Event) bool {
	delay := batchRetryMin
	for {
		var err error
		before := len(batch)
		batch, err = b.writeBatch(batch)
		b.written.Add(int64(before - len(batch)))
		if err == nil {
			return true
		}
		b.failedBatches.Add(1)
		b.logger.Warn("writing audit events failed; retrying", slog.Int("events", len(batch)),
			slog.Duration("retry_in", delay), slog.String("error", err.Error()))
		select {
		case <-b.stop:
			return false
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	for _, e := range batch {
		b.drop(context.Background(), e, "the database could not be reached before shutdown")
	}
	for e := range b.queue {
		b.drop(context.Background(), e, "the database could not be reached before shutdown")
	}
}
