package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// auditDate returns a fixed time on 2024-05-01, with microseconds, which
// both backends store exactly.
func auditDate(hour, minute int, micro int) time.Time {
	return time.Date(2024, 5, 1, hour, minute, 0, micro*1000, time.UTC)
}

func auditEvent(id string, date time.Time) audit.Event {
	return audit.Event{ID: id, Date: date, Subsystem: audit.Subsystem, Code: audit.CodeMismatch, SiteID: "example"}
}

func writeEvents(t *testing.T, st *store.Store, events ...audit.Event) {
	t.Helper()
	for _, e := range events {
		if err := st.WriteAuditEvent(context.Background(), e); err != nil {
			t.Fatalf("WriteAuditEvent(%s) failed: %v", e.ID, err)
		}
	}
}

func eventIDs(events []audit.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}

func TestAuditEventRoundTrip(t *testing.T) {
	full := audit.Event{
		ID:                 "full",
		Date:               time.Date(2024, 5, 1, 12, 30, 45, 123456000, time.FixedZone("AEST", 10*60*60)),
		Subsystem:          audit.Subsystem,
		Code:               audit.CodeMismatch,
		UserID:             "user1",
		InstanceUserID:     "user2",
		SiteID:             "example",
		GroupID:            "team",
		InstanceDatum:      "/gs-group-groups.json",
		SupplementaryDatum: "127.0.0.1",
	}
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openMigrated(t, b.New(t))
			writeEvents(t, st, full)

			events, err := st.AuditEvents(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatalf("AuditEvents failed: %v", err)
			}
			if len(events) != 1 {
				t.Fatalf("AuditEvents returned %d events, expected 1", len(events))
			}
			got := events[0]
			if !got.Date.Equal(full.Date) {
				t.Errorf("Date = %v, expected %v", got.Date, full.Date)
			}
			if got.Date.Location() != time.UTC {
				t.Errorf("Date location = %v, expected UTC", got.Date.Location())
			}
			want := full
			got.Date, want.Date = time.Time{}, time.Time{}
			if got != want {
				t.Errorf("AuditEvents returned\n%+v\nexpected\n%+v", got, want)
			}
		})
	}
}

func TestAuditEventNulls(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.New(t)
			st := openMigrated(t, dsn)
			bare := audit.Event{ID: "bare", Date: auditDate(1, 0, 0), Subsystem: audit.Subsystem, Code: audit.CodeMismatch}
			writeEvents(t, st, bare)
			raw := openRaw(t, dsn)

			for _, column := range []string{"user_id", "instance_user_id", "group_id", "instance_datum", "supplementary_datum"} {
				got := raw.value(t, "SELECT "+column+" FROM audit_event WHERE id = 'bare'")
				if got != "<NULL>" {
					t.Errorf("%s = %q, expected NULL for an empty field", column, got)
				}
			}
			if got := raw.value(t, "SELECT site_id FROM audit_event WHERE id = 'bare'"); got != "" {
				t.Errorf("site_id = %q, expected the empty string for the install-wide site", got)
			}

			events, err := st.AuditEvents(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatalf("AuditEvents failed: %v", err)
			}
			if len(events) != 1 {
				t.Fatalf("AuditEvents returned %d events, expected 1", len(events))
			}
			events[0].Date, bare.Date = time.Time{}, time.Time{}
			if events[0] != bare {
				t.Errorf("AuditEvents returned %+v, expected %+v", events[0], bare)
			}
		})
	}
}

// TestAuditEventsGroupServerNulls reads a row whose site_id is NULL, as
// GroupServer may have written.
func TestAuditEventsGroupServerNulls(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.New(t)
			st := openMigrated(t, dsn)
			date := "2016-01-02 03:04:05+00"
			if st.Backend() != store.PostgreSQL {
				date = "2016-01-02T03:04:05.000000000Z"
			}
			openRaw(t, dsn).exec(t, "INSERT INTO audit_event (id, event_date, subsystem, event_code) VALUES (?, ?, ?, ?)",
				"gs-null-site", date, "gs.auth.token", "1")

			events, err := st.AuditEvents(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatalf("AuditEvents failed: %v", err)
			}
			if len(events) != 1 {
				t.Fatalf("AuditEvents returned %d events, expected 1", len(events))
			}
			if events[0].SiteID != "" {
				t.Errorf("SiteID = %q, expected the empty string for NULL", events[0].SiteID)
			}
		})
	}
}

func TestAuditEventsQuery(t *testing.T) {
	events := []audit.Event{
		auditEvent("a-first", auditDate(9, 0, 0)),
		auditEvent("b-second", auditDate(10, 0, 1)),
		auditEvent("d-tie", auditDate(11, 0, 0)),
		auditEvent("c-tie", auditDate(11, 0, 0)),
		auditEvent("e-last", auditDate(12, 0, 0)),
		{ID: "f-other", Date: auditDate(13, 0, 0), Subsystem: "gs.other", Code: "7"},
	}
	tests := []struct {
		name  string
		query store.AuditQuery
		want  []string
	}{
		{"all newest first", store.AuditQuery{}, []string{"f-other", "e-last", "c-tie", "d-tie", "b-second", "a-first"}},
		{"subsystem", store.AuditQuery{Subsystem: audit.Subsystem}, []string{"e-last", "c-tie", "d-tie", "b-second", "a-first"}},
		{"other subsystem", store.AuditQuery{Subsystem: "gs.other"}, []string{"f-other"}},
		{"unknown subsystem", store.AuditQuery{Subsystem: "gs.none"}, nil},
		{"since is inclusive", store.AuditQuery{Since: auditDate(10, 0, 1)}, []string{"f-other", "e-last", "c-tie", "d-tie", "b-second"}},
		{"since one microsecond later", store.AuditQuery{Since: auditDate(10, 0, 2)}, []string{"f-other", "e-last", "c-tie", "d-tie"}},
		{"since in another zone", store.AuditQuery{Since: auditDate(11, 0, 0).In(time.FixedZone("UTC-5", -5*60*60))}, []string{"f-other", "e-last", "c-tie", "d-tie"}},
		{"since after all", store.AuditQuery{Since: auditDate(14, 0, 0)}, nil},
		{"limit", store.AuditQuery{Limit: 2}, []string{"f-other", "e-last"}},
		{"limit inside tie", store.AuditQuery{Limit: 3}, []string{"f-other", "e-last", "c-tie"}},
		{"limit with subsystem and since", store.AuditQuery{Subsystem: audit.Subsystem, Since: auditDate(10, 0, 0), Limit: 2}, []string{"e-last", "c-tie"}},
	}
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openMigrated(t, b.New(t))
			writeEvents(t, st, events...)

			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := st.AuditEvents(context.Background(), tt.query)
					if err != nil {
						t.Fatalf("AuditEvents(%+v) failed: %v", tt.query, err)
					}
					if fmt.Sprint(eventIDs(got)) != fmt.Sprint(tt.want) {
						t.Errorf("AuditEvents(%+v) = %v, expected %v", tt.query, eventIDs(got), tt.want)
					}
				})
			}
		})
	}
}

func TestAuditEventsDefaultLimit(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openMigrated(t, b.New(t))
			for i := range 105 {
				writeEvents(t, st, auditEvent(fmt.Sprintf("event-%03d", i), auditDate(0, 0, i)))
			}

			for _, limit := range []int{0, -1} {
				got, err := st.AuditEvents(context.Background(), store.AuditQuery{Limit: limit})
				if err != nil {
					t.Fatalf("AuditEvents(Limit: %d) failed: %v", limit, err)
				}
				if len(got) != 100 {
					t.Errorf("AuditEvents(Limit: %d) returned %d events, expected 100", limit, len(got))
				}
				if len(got) > 0 && got[0].ID != "event-104" {
					t.Errorf("AuditEvents(Limit: %d) starts with %s, expected the newest, event-104", limit, got[0].ID)
				}
			}
		})
	}
}

func TestAuditEventDuplicateID(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openMigrated(t, b.New(t))
			writeEvents(t, st, auditEvent("same-id", auditDate(9, 0, 0)))

			err := st.WriteAuditEvent(context.Background(), auditEvent("same-id", auditDate(9, 0, 0)))

			if !errors.Is(err, audit.ErrDuplicateID) {
				t.Errorf("second WriteAuditEvent(same-id) error = %v, expected one matching audit.ErrDuplicateID", err)
			}
			if errors.Is(err, store.ErrUnavailable) {
				t.Errorf("duplicate id error %v matches store.ErrUnavailable", err)
			}
		})
	}
}
