package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// flakyWriter passes writes to a real store, fails them while down is set,
// and, while lose is set, stores a batch but reports a failure, as when the
// answer to a committed write is lost.
type flakyWriter struct {
	st   *store.Store
	down atomic.Bool
	lose atomic.Bool
}

var errDown = errors.New("database unreachable")

func (f *flakyWriter) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	if f.down.Load() {
		return errDown
	}
	return f.st.WriteAuditEvent(ctx, e)
}

func (f *flakyWriter) WriteAuditEvents(ctx context.Context, events []audit.Event) error {
	if f.down.Load() {
		return errDown
	}
	err := f.st.WriteAuditEvents(ctx, events)
	if err == nil && f.lose.Load() {
		return errDown
	}
	return err
}

func newBatchStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func queueEvents(t *testing.T, b *audit.Batcher, n int, page string) {
	t.Helper()
	for i := 0; i < n; i++ {
		id, err := audit.NewID()
		if err != nil {
			t.Fatal(err)
		}
		e := audit.Event{ID: id, Date: time.Now().UTC(), Subsystem: audit.Subsystem, Code: audit.CodeMismatch,
			InstanceDatum: page, SupplementaryDatum: fmt.Sprintf("127.0.0.%d", i%250+1)}
		if err := b.WriteAuditEvent(context.Background(), e); err != nil {
			t.Fatalf("WriteAuditEvent %d: %v", i, err)
		}
	}
}

// countEvents returns how many events of page are stored, and how many
// distinct ids they have.
func countEvents(t *testing.T, st *store.Store, page string) (rows, ids int) {
	t.Helper()
	events, err := st.AuditEvents(context.Background(), store.AuditQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for _, e := range events {
		if e.InstanceDatum == page {
			rows++
			seen[e.ID] = true
		}
	}
	return rows, len(seen)
}

func closeBatcher(t *testing.T, b *audit.Batcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestBatcherStoresEveryEvent(t *testing.T) {
	st := newBatchStore(t)
	b := audit.NewBatcher(st)
	queueEvents(t, b, 250, "http://h/all")
	closeBatcher(t, b)

	rows, ids := countEvents(t, st, "http://h/all")
	if rows != 250 {
		t.Errorf("rows = %d, want 250", rows)
	}
	if ids != 250 {
		t.Errorf("distinct ids = %d, want 250", ids)
	}
	if got := b.Stats().Written; got != 250 {
		t.Errorf("Stats().Written = %d, want 250", got)
	}
}

func TestBatcherQueueFullWithoutSpool(t *testing.T) {
	st := newBatchStore(t)
	w := &flakyWriter{st: st}
	w.down.Store(true)
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	b := audit.NewBatcher(w, audit.WithQueueSize(1), audit.WithBatchLogger(logger))

	var full int
	for i := 0; i < 50; i++ {
		id, _ := audit.NewID()
		err := b.WriteAuditEvent(context.Background(), audit.Event{ID: id, Date: time.Now(), Subsystem: audit.Subsystem,
			Code: audit.CodeMismatch, InstanceDatum: "http://h/full"})
		if errors.Is(err, audit.ErrQueueFull) {
			full++
		}
	}
	if full == 0 {
		t.Fatal("no write found the queue full")
	}
	if got := b.Stats().Dropped; got != int64(full) {
		t.Errorf("Stats().Dropped = %d, want %d", got, full)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if !bytes.Contains([]byte(logged), []byte("instance_datum=http://h/full")) {
		t.Errorf("dropped events were not logged with their fields; log:\n%s", logged)
	}
	w.down.Store(false)
	closeBatcher(t, b)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSpoolKeepsEventsDuringOutage(t *testing.T) {
	st := newBatchStore(t)
	w := &flakyWriter{st: st}
	spool, err := audit.OpenSpool(filepath.Join(t.TempDir(), "audit.spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	b := audit.NewBatcher(w, audit.WithSpool(spool), audit.WithQueueSize(10))

	w.down.Store(true)
	queueEvents(t, b, 300, "http://h/outage")
	waitUntil(t, "events spooled", func() bool { return b.Stats().Queued == 0 && spool.Len() > 0 })
	if rows, _ := countEvents(t, st, "http://h/outage"); rows != 0 {
		t.Fatalf("rows during the outage = %d, want 0", rows)
	}

	w.down.Store(false)
	waitUntil(t, "spool replayed", func() bool { return spool.Len() == 0 })
	closeBatcher(t, b)
	rows, ids := countEvents(t, st, "http://h/outage")
	if rows != 300 {
		t.Errorf("rows = %d, want 300", rows)
	}
	if ids != 300 {
		t.Errorf("distinct ids = %d, want 300", ids)
	}
}

func TestSpoolSurvivesRestartWithoutDuplicates(t *testing.T) {
	st := newBatchStore(t)
	path := filepath.Join(t.TempDir(), "audit.spool")
	w := &flakyWriter{st: st}

	// First process: some batches are stored but reported as failed, the
	// rest cannot be stored at all; then it stops.
	spool, err := audit.OpenSpool(path)
	if err != nil {
		t.Fatal(err)
	}
	b := audit.NewBatcher(w, audit.WithSpool(spool))
	w.lose.Store(true)
	queueEvents(t, b, 120, "http://h/restart")
	waitUntil(t, "lost answers spooled", func() bool { return b.Stats().Queued == 0 && spool.Len() > 0 })
	w.lose.Store(false)
	w.down.Store(true)
	queueEvents(t, b, 80, "http://h/restart")
	closeBatcher(t, b)
	spool.Close()

	// Second process, with the database back.
	w.down.Store(false)
	spool2, err := audit.OpenSpool(path)
	if err != nil {
		t.Fatal(err)
	}
	defer spool2.Close()
	if spool2.Len() == 0 {
		t.Fatal("the spool was empty after the restart")
	}
	b2 := audit.NewBatcher(w, audit.WithSpool(spool2))
	waitUntil(t, "spool replayed after restart", func() bool { return spool2.Len() == 0 })
	closeBatcher(t, b2)

	rows, ids := countEvents(t, st, "http://h/restart")
	if rows != 200 {
		t.Errorf("rows = %d, want 200", rows)
	}
	if ids != 200 {
		t.Errorf("distinct ids = %d, want 200", ids)
	}
}

func TestSpoolRejectsSecondOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.spool")
	s, err := audit.OpenSpool(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := audit.OpenSpool(path); err == nil {
		t.Error("a second OpenSpool of a locked spool succeeded")
	}
}

// waitUntil polls cond every 10 ms for up to 15 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gatedWriter records each batch it is given, in order, and holds every
// write until its gate is opened.
type gatedWriter struct {
	gate    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	batches [][]string
}

func (g *gatedWriter) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	return g.WriteAuditEvents(ctx, []audit.Event{e})
}

func (g *gatedWriter) WriteAuditEvents(ctx context.Context, events []audit.Event) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.batches = append(g.batches, ids)
	return nil
}

func TestBatcherDrainsFullQueueInOrder(t *testing.T) {
	const size = 300
	w := &gatedWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := audit.NewBatcher(w, audit.WithQueueSize(size))
	write := func(id string) error {
		return b.WriteAuditEvent(context.Background(), audit.Event{ID: id, Date: time.Now(), Subsystem: audit.Subsystem, Code: audit.CodeMismatch})
	}
	// The first event is taken at once and its write held, so the queue
	// behind it is empty and its capacity is exact.
	if err := write("e0000"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first batch was never written")
	}
	var want []string
	want = append(want, "e0000")
	for i := 1; i <= size; i++ {
		id := fmt.Sprintf("e%04d", i)
		if err := write(id); err != nil {
			t.Fatalf("event %d of a queue of %d was rejected: %v", i, size, err)
		}
		want = append(want, id)
	}
	if got := b.Stats().Queued; got != size {
		t.Errorf("Stats().Queued = %d, want %d", got, size)
	}
	if err := write("overflow"); !errors.Is(err, audit.ErrQueueFull) {
		t.Errorf("write to a full queue returned %v, want ErrQueueFull", err)
	}

	close(w.gate)
	closeBatcher(t, b)
	w.mu.Lock()
	defer w.mu.Unlock()
	var got []string
	for _, batch := range w.batches {
		if len(batch) > audit.DefaultMaxBatch {
			t.Errorf("a batch held %d events, more than %d", len(batch), audit.DefaultMaxBatch)
		}
		got = append(got, batch...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("written %d events, want %d in the order queued; first batches %v", len(got), len(want), w.batches[:min(3, len(w.batches))])
	}
	if q := b.Stats().Queued; q != 0 {
		t.Errorf("Stats().Queued = %d after Close, want 0", q)
	}
}

// memoryWriter stores events in memory.
type memoryWriter struct {
	mu     sync.Mutex
	events int
}

func (m *memoryWriter) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	return m.WriteAuditEvents(ctx, []audit.Event{e})
}

func (m *memoryWriter) WriteAuditEvents(_ context.Context, events []audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events += len(events)
	return nil
}

func TestBatcherCloseDuringWrites(t *testing.T) {
	for round := 0; round < 200; round++ {
		w := &memoryWriter{}
		b := audit.NewBatcher(w)
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					err := b.WriteAuditEvent(context.Background(), audit.Event{ID: fmt.Sprintf("r%d-g%d-%d", round, g, i),
						Date: time.Now(), Subsystem: audit.Subsystem, Code: audit.CodeMismatch})
					if errors.Is(err, audit.ErrClosed) {
						return
					}
					// Four writers in tight loops may fill the queue.
					if errors.Is(err, audit.ErrQueueFull) {
						continue
					}
					if err != nil {
						t.Errorf("WriteAuditEvent: %v", err)
						return
					}
					accepted.Add(1)
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		closeBatcher(t, b)
		wg.Wait()
		w.mu.Lock()
		stored := w.events
		w.mu.Unlock()
		if int64(stored) != accepted.Load() {
			t.Fatalf("round %d: %d events accepted but %d stored", round, accepted.Load(), stored)
		}
	}
}

func TestBatcherCloseReportsAbandonedEvents(t *testing.T) {
	st := newBatchStore(t)
	w := &flakyWriter{st: st}
	w.down.Store(true)
	b := audit.NewBatcher(w)
	queueEvents(t, b, 150, "http://h/abandoned")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := b.Close(ctx)
	if err == nil {
		t.Fatal("Close returned nil although the database was down throughout")
	}
	if !strings.Contains(err.Error(), "150 events") {
		t.Errorf("Close error %q does not count the 150 events", err)
	}
	if got := b.Stats().Dropped; got != 150 {
		t.Errorf("Stats().Dropped = %d, want 150", got)
	}
	if got := b.Stats().Queued; got != 0 {
		t.Errorf("Stats().Queued = %d after Close, want 0", got)
	}
	if rows, _ := countEvents(t, st, "http://h/abandoned"); rows != 0 {
		t.Errorf("%d events were stored although the database was down", rows)
	}
}

// slowWriter records the ids it stores, in order, taking a millisecond per
// batch.
type slowWriter struct {
	mu  sync.Mutex
	ids []string
}

func (s *slowWriter) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	return s.WriteAuditEvents(ctx, []audit.Event{e})
}

func (s *slowWriter) WriteAuditEvents(_ context.Context, events []audit.Event) error {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		s.ids = append(s.ids, e.ID)
	}
	return nil
}

func TestBatcherKeepsOrderWhileDraining(t *testing.T) {
	w := &slowWriter{}
	b := audit.NewBatcher(w, audit.WithQueueSize(300))
	var want []string
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("e%05d", i)
		for {
			err := b.WriteAuditEvent(context.Background(), audit.Event{ID: id, Date: time.Now(), Subsystem: audit.Subsystem, Code: audit.CodeMismatch})
			if err == nil {
				break
			}
			if !errors.Is(err, audit.ErrQueueFull) {
				t.Fatalf("WriteAuditEvent: %v", err)
			}
			time.Sleep(100 * time.Microsecond)
		}
		want = append(want, id)
	}
	closeBatcher(t, b)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Equal(w.ids, want) {
		t.Errorf("stored %d events, want %d in the order written", len(w.ids), len(want))
	}
}

// duplicateWriter rejects every batch with a taken id, as when another
// writer stored one of its ids, and stores single events until it has
// stored okSingles of them, then fails.
type duplicateWriter struct {
	mu        sync.Mutex
	okSingles int
	stored    int
}

func (d *duplicateWriter) WriteAuditEvents(context.Context, []audit.Event) error {
	return fmt.Errorf("insert: %w", audit.ErrDuplicateID)
}

func (d *duplicateWriter) WriteAuditEvent(context.Context, audit.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stored == d.okSingles {
		return errDown
	}
	d.stored++
	return nil
}

func TestBatcherAbandonsOnlyUnwrittenEvents(t *testing.T) {
	w := &duplicateWriter{okSingles: 3}
	b := audit.NewBatcher(w)
	for i := 0; i < 10; i++ {
		if err := b.WriteAuditEvent(context.Background(), audit.Event{ID: fmt.Sprintf("e%d", i), Date: time.Now(),
			Subsystem: audit.Subsystem, Code: audit.CodeMismatch}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := b.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "7 events") {
		t.Errorf("Close returned %v, want an error counting the 7 unwritten events", err)
	}
	st := b.Stats()
	if st.Written != 3 {
		t.Errorf("Stats().Written = %d, want 3", st.Written)
	}
	if st.Dropped != 7 {
		t.Errorf("Stats().Dropped = %d, want 7", st.Dropped)
	}
}

func TestBatcherCloseWaitsForSpoolWrites(t *testing.T) {
	for round := 0; round < 50; round++ {
		st := newBatchStore(t)
		w := &flakyWriter{st: st}
		w.down.Store(true)
		spool, err := audit.OpenSpool(filepath.Join(t.TempDir(), "audit.spool"))
		if err != nil {
			t.Fatal(err)
		}
		b := audit.NewBatcher(w, audit.WithQueueSize(1), audit.WithSpool(spool))
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					err := b.WriteAuditEvent(context.Background(), audit.Event{ID: fmt.Sprintf("r%d-g%d-%d", round, g, i),
						Date: time.Now(), Subsystem: audit.Subsystem, Code: audit.CodeMismatch})
					if err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(2 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		b.Close(ctx)
		cancel()
		atClose := spool.Len()
		wg.Wait()
		if after := spool.Len(); after != atClose {
			t.Fatalf("round %d: the spool held %d events when Close returned and %d once the writers stopped", round, atClose, after)
		}
		spool.Close()
	}
}

// hangingWriter blocks every write until its context ends, and records
// why the last one ended.
type hangingWriter struct {
	mu    sync.Mutex
	ended error
}

func (h *hangingWriter) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	return h.WriteAuditEvents(ctx, []audit.Event{e})
}

func (h *hangingWriter) WriteAuditEvents(ctx context.Context, _ []audit.Event) error {
	<-ctx.Done()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = ctx.Err()
	return ctx.Err()
}

func TestBatcherCloseCancelsWriteInProgress(t *testing.T) {
	for _, withSpool := range []bool{false, true} {
		t.Run(fmt.Sprintf("spool %v", withSpool), func(t *testing.T) {
			w := &hangingWriter{}
			var opts []audit.BatcherOption
			var spool *audit.Spool
			if withSpool {
				var err error
				if spool, err = audit.OpenSpool(filepath.Join(t.TempDir(), "audit.spool")); err != nil {
					t.Fatal(err)
				}
				defer spool.Close()
				opts = append(opts, audit.WithSpool(spool))
			}
			b := audit.NewBatcher(w, opts...)
			for i := 0; i < 5; i++ {
				if err := b.WriteAuditEvent(context.Background(), audit.Event{ID: fmt.Sprintf("e%d", i), Date: time.Now(),
					Subsystem: audit.Subsystem, Code: audit.CodeMismatch}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := b.Close(ctx)

			w.mu.Lock()
			ended := w.ended
			w.mu.Unlock()
			if !errors.Is(ended, context.Canceled) {
				t.Errorf("the write in progress ended with %v, want context.Canceled from Close", ended)
			}
			if withSpool {
				if err != nil {
					t.Errorf("Close returned %v, want nil because the events went to the spool", err)
				}
				if n := spool.Len(); n != 5 {
					t.Errorf("the spool holds %d events, want 5", n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "5 events") {
				t.Errorf("Close returned %v, want an error counting the 5 unwritten events", err)
			}
		})
	}
}
