// Package audit records authentication failures in GroupServer's audit
// trail, the audit_event table.
//
// An [Event] is one row. A [Recorder] gives each event a fresh random id and
// writes it through a [Writer], such as a store; when the write fails it
// tries again with a new id, and when every attempt fails it logs the event's
// fields at error level, so no event vanishes without a trace.
package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// Subsystem is the subsystem of every event this package writes, as in
// GroupServer.
const Subsystem = "gs.auth.token"

// Event codes, as stored in the event_code column.
const (
	// CodeMismatch is an unknown or malformed token presented to a hook.
	CodeMismatch = "1"
	// CodeExpired is a known token presented after its expiry, or after
	// the grace period of a rotation.
	CodeExpired = "2"
	// CodeRevoked is a revoked token presented to a hook.
	CodeRevoked = "3"
	// CodeWrongSite is a token of one site presented to another.
	CodeWrongSite = "4"
	// CodeThrottled is a client locked out after too many failures. It is
	// written once per lockout, not per refused request.
	CodeThrottled = "5"
)

// CodeName returns a short description of an event code of this
// subsystem, such as "token mismatch".
func CodeName(code string) string {
	switch code {
	case CodeMismatch:
		return "token mismatch"
	case CodeExpired:
		return "expired token"
	case CodeRevoked:
		return "revoked token"
	case CodeWrongSite:
		return "other site's token"
	case CodeThrottled:
		return "client throttled"
	}
	return "event " + code
}

// IDLength is the length of an event id: 22 base-62 characters, about 131
// random bits, so ids of events written at the same instant on the same
// page do not collide.
const IDLength = 22

// Event is one row of the audit_event table. Empty strings in the optional
// columns are stored as NULL, except SiteID, where the empty string names
// the install-wide site.
type Event struct {
	// ID is the primary key. A [Recorder] sets it.
	ID string
	// Date is when the event happened, in UTC.
	Date time.Time
	// Subsystem is the component that wrote the event.
	Subsystem string
	// Code is the event code within the subsystem.
	Code string
	// UserID is the user who acted, or empty.
	UserID string
	// InstanceUserID is the user acted upon, or empty.
	InstanceUserID string
	// SiteID is the site of the event.
	SiteID string
	// GroupID is the group of the event, or empty.
	GroupID string
	// InstanceDatum is the event's main datum: for a token failure, the
	// page URL without its query string.
	InstanceDatum string
	// SupplementaryDatum is more detail: for a token failure, the client
	// address.
	SupplementaryDatum string
}

// LogAttrs returns the event's fields as slog attributes.
func (e Event) LogAttrs() []any {
	return []any{
		slog.String("event_id", e.ID),
		slog.Time("event_date", e.Date),
		slog.String("subsystem", e.Subsystem),
		slog.String("event_code", e.Code),
		slog.String("site_id", e.SiteID),
		slog.String("instance_datum", e.InstanceDatum),
		slog.String("supplementary_datum", e.SupplementaryDatum),
	}
}

// ErrDuplicateID is returned by a [Writer] when an event's id is taken.
var ErrDuplicateID = errors.New("audit event id already exists")

// Writer stores audit events.
type Writer interface {
	// WriteAuditEvent inserts one event. It returns an error matching
	// [ErrDuplicateID] when the id is already taken.
	WriteAuditEvent(ctx context.Context, e Event) error
}

// NewID returns a new random event id of [IDLength] characters.
func NewID() (string, error) {
	return NewIDFrom(rand.Reader)
}

// NewIDFrom returns a new event id made from the bytes of random.
func NewIDFrom(random io.Reader) (string, error) {
	id, err := token.GenerateFrom(random, IDLength)
	if err != nil {
		return "", fmt.Errorf("audit: making an event id failed: %w", err)
	}
	return id, nil
}

// DefaultAttempts is how many times a [Recorder] tries to write an event.
const DefaultAttempts = 3

// Recorder writes events with fresh ids, retrying failed writes. It is safe
// for concurrent use.
type Recorder struct {
	writer   Writer
	logger   *slog.Logger
	attempts int
	now      func() time.Time
}

// NewRecorder returns a Recorder that writes to w and logs to logger (nil
// discards the log).
func NewRecorder(w Writer, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{writer: w, logger: logger, attempts: DefaultAttempts, now: time.Now}
}

// Record sets the event's id, its date (when zero, to now) and its subsystem
// (when empty), then writes it. Each failed write is retried with a new id,
// up to [DefaultAttempts] writes. When all fail, Record logs the event's
// fields at error level and returns the last error.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.Date.IsZero() {
		e.Date = r.now()
	}
	e.Date = e.Date.UTC()
	if e.Subsystem == "" {
		e.Subsystem = Subsystem
	}

	var err error
	for attempt := 1; attempt <= r.attempts; attempt++ {
		if e.ID, err = NewID(); err != nil {
			break
		}
		if err = r.writer.WriteAuditEvent(ctx, e); err == nil {
			return nil
		}
		if errors.Is(err, ErrQueueFull) || errors.Is(err, ErrClosed) {
			// The batcher has logged the event already.
			return fmt.Errorf("audit: writing event failed: %w", err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	attrs := append(e.LogAttrs(), slog.String("error", err.Error()))
	r.logger.ErrorContext(ctx, "writing an audit event failed", attrs...)
	return fmt.Errorf("audit: writing event failed: %w", err)
}
