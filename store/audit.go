package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteTimeLayout stores times in SQLite as fixed-width UTC text, so that
// text order is time order.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000000Z"

// WriteAuditEvent inserts e into audit_event. It returns an error matching
// [audit.ErrDuplicateID] when e.ID is taken.
func (s *Store) WriteAuditEvent(ctx context.Context, e audit.Event) error {
	_, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO audit_event
		(id, event_date, subsystem, event_code, user_id, instance_user_id, site_id, group_id, instance_datum, supplementary_datum)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.ID, s.timeArg(e.Date), e.Subsystem, e.Code, nullable(e.UserID), nullable(e.InstanceUserID),
		e.SiteID, nullable(e.GroupID), nullable(e.InstanceDatum), nullable(e.SupplementaryDatum))
	if err == nil {
		return nil
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %s", audit.ErrDuplicateID, e.ID)
	}
	return s.opError("write audit event to", err)
}

// AuditQuery selects audit events.
type AuditQuery struct {
	// Subsystem selects events of one subsystem; empty selects all.
	Subsystem string
	// Since selects events at or after this time; zero selects all.
	Since time.Time
	// Limit is the maximum number of events; zero or less means 100.
	Limit int
}

// AuditEvents returns the events q selects, newest first.
func (s *Store) AuditEvents(ctx context.Context, q AuditQuery) ([]audit.Event, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, event_date, subsystem, event_code,
		COALESCE(user_id, ''), COALESCE(instance_user_id, ''), COALESCE(site_id, ''), COALESCE(group_id, ''),
		COALESCE(instance_datum, ''), COALESCE(supplementary_datum, '')
		FROM audit_event
		WHERE (? = '' OR subsystem = ?) AND event_date >= ?
		ORDER BY event_date DESC, id
		LIMIT ?`),
		q.Subsystem, q.Subsystem, s.timeArg(q.Since), q.Limit)
	if err != nil {
		return nil, s.opError("read audit events from", err)
	}
	defer rows.Close()

	var out []audit.Event
	for rows.Next() {
		var e audit.Event
		var date any
		if err := rows.Scan(&e.ID, &date, &e.Subsystem, &e.Code, &e.UserID, &e.InstanceUserID,
			&e.SiteID, &e.GroupID, &e.InstanceDatum, &e.SupplementaryDatum); err != nil {
			return nil, s.opError("read audit events from", err)
		}
		if e.Date, err = parseTime(date); err != nil {
			return nil, s.opError("read audit events from", fmt.Errorf("event %s: %w", e.ID, err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.opError("read audit events from", err)
	}
	return out, nil
}

func (s *Store) timeArg(t time.Time) any {
	if s.dsn.Backend == SQLite {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC()
}

func parseTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		return parseTimeText(t)
	case []byte:
		return parseTimeText(string(t))
	}
	return time.Time{}, fmt.Errorf("unexpected event_date of type %T", v)
}

func parseTimeText(s string) (time.Time, error) {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unparsable event_date %q", s)
}

func nullable(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// WriteAuditEvents inserts events in one statement, so all or none are
// stored. It returns an error matching [audit.ErrDuplicateID] when an id is
// taken.
func (s *Store) WriteAuditEvents(ctx context.Context, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_event
		(id, event_date, subsystem, event_code, user_id, instance_user_id, site_id, group_id, instance_datum, supplementary_datum)
		VALUES `)
	args := make([]any, 0, len(events)*10)
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, e.ID, s.timeArg(e.Date), e.Subsystem, e.Code, nullable(e.UserID), nullable(e.InstanceUserID),
			e.SiteID, nullable(e.GroupID), nullable(e.InstanceDatum), nullable(e.SupplementaryDatum))
	}
	_, err := s.db.ExecContext(ctx, s.rebind(b.String()), args...)
	if err == nil {
		return nil
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: in a batch of %d events", audit.ErrDuplicateID, len(events))
	}
	return s.opError("write audit events to", err)
}
