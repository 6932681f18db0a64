package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/fakepg"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

func TestMigrateTwice(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)

			for run := 1; run <= 2; run++ {
				st := openStore(t, dsn)
				if err := st.Migrate(ctx); err != nil {
					t.Fatalf("Migrate run %d failed: %v", run, err)
				}
				current, latest, err := st.SchemaVersion(ctx)
				if err != nil {
					t.Fatalf("SchemaVersion after run %d failed: %v", run, err)
				}
				if current != latest {
					t.Errorf("after run %d the schema is at version %d, expected the latest, %d", run, current, latest)
				}
				if latest < 1 {
					t.Errorf("latest schema version = %d, expected at least 1", latest)
				}
				st.Close()
			}
		})
	}
}

// TestMigrateConcurrent runs Migrate from several stores on one new
// database at once, as instances starting together do. On SQLite each round
// uses a fresh file and eight stores, because a lost race shows only on some
// runs. On PostgreSQL two stores suffice to exercise the advisory lock,
// whose waiters poll only every few seconds.
func TestMigrateConcurrent(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			rounds, instances := 2, 8
			if b.Name == "postgresql" {
				rounds, instances = 1, 2
			}
			for round := range rounds {
				dsn := b.New(t)
				stores := make([]*store.Store, instances)
				for i := range stores {
					stores[i] = openStore(t, dsn)
				}

				errs := make([]error, instances)
				var wg sync.WaitGroup
				for i, st := range stores {
					wg.Go(func() { errs[i] = st.Migrate(context.Background()) })
				}
				wg.Wait()

				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d: concurrent Migrate %d failed: %v", round, i, err)
					}
				}
			}
		})
	}
}

func TestMigrateKeepsGroupServerData(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)
			raw := openRaw(t, dsn)
			raw.createGroupServerTables(t)
			legacy := newToken(t)
			raw.insertOption(t, "gs.site.config", "siteName", "example", "", "Example site")
			raw.insertOption(t, "gs.group.messages", "maxSize", "example", "team", "1048576")
			raw.insertOption(t, "gs.auth.token", "authToken", "", "", legacy)
			raw.insertOption(t, "gs.group.privacy", "note", "", "", nil)
			eventDate := "2015-03-04 05:06:07+00"
			if !raw.postgres {
				eventDate = "2015-03-04T05:06:07.000000000Z"
			}
			raw.exec(t, "INSERT INTO audit_event (id, event_date, subsystem, event_code, site_id, instance_datum) VALUES (?, ?, ?, ?, ?, ?)",
				"gs-old-event", eventDate, "gs.auth.token", "1", "example", "/gs-group-groups.json")

			st := openMigrated(t, dsn)
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate failed: %v", err)
			}

			options := raw.columnValues(t, "SELECT component_id || '/' || option_id || '/' || site_id || '/' || group_id || '=' || COALESCE(value, '<NULL>') FROM option ORDER BY component_id, option_id")
			want := []string{
				"gs.auth.token/authToken//=" + legacy,
				"gs.group.messages/maxSize/example/team=1048576",
				"gs.group.privacy/note//=<NULL>",
				"gs.site.config/siteName/example/=Example site",
			}
			if strings.Join(options, "\n") != strings.Join(want, "\n") {
				t.Errorf("option rows after Migrate:\n%s\nexpected:\n%s", strings.Join(options, "\n"), strings.Join(want, "\n"))
			}

			indexQuery := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'option_key_idx'"
			if raw.postgres {
				indexQuery = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'option_key_idx'"
			}
			if n := raw.count(t, indexQuery); n != 1 {
				t.Errorf("GroupServer's unique index on option: found %d, expected 1", n)
			}

			events, err := st.AuditEvents(ctx, store.AuditQuery{})
			if err != nil {
				t.Fatalf("AuditEvents failed: %v", err)
			}
			if len(events) != 1 {
				t.Fatalf("AuditEvents returned %d events, expected GroupServer's 1", len(events))
			}
			if events[0].ID != "gs-old-event" {
				t.Errorf("event ID = %q, expected %q", events[0].ID, "gs-old-event")
			}
			if got := events[0].Date.Format("2006-01-02T15:04:05Z07:00"); got != "2015-03-04T05:06:07Z" {
				t.Errorf("event date = %s, expected 2015-03-04T05:06:07Z", got)
			}
			if events[0].InstanceDatum != "/gs-group-groups.json" {
				t.Errorf("event instance datum = %q, expected %q", events[0].InstanceDatum, "/gs-group-groups.json")
			}

			if _, err := st.Verify(ctx, "", legacy); err != nil {
				t.Errorf("Verify(GroupServer's token) after Migrate failed: %v", err)
			}
		})
	}
}

// TestVerifyGroupServerToken stores a token as GroupServer's Python tool
// does, with a plain INSERT, and checks it through the store.
func TestVerifyGroupServerToken(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)
			st := openMigrated(t, dsn)
			legacy := newToken(t)
			openRaw(t, dsn).insertOption(t, "gs.auth.token", "authToken", "", "", legacy)

			entry, err := st.Verify(ctx, "", legacy)
			if err != nil {
				t.Fatalf("Verify(GroupServer's token) failed: %v", err)
			}
			if entry.ID != store.LegacyTokenID {
				t.Errorf("Verify entry ID = %q, expected %q", entry.ID, store.LegacyTokenID)
			}

			_, err = st.Verify(ctx, "", legacy[:31])
			var me *token.MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Verify(token less one char) error = %v, expected a *token.MismatchError", err)
			}
			if me.Reason != token.ReasonUnknown {
				t.Errorf("Verify(token less one char) reason = %v, expected %v", me.Reason, token.ReasonUnknown)
			}
		})
	}
}

// TestVerifyIgnoresSiteAndGroupRows checks that only the install-wide row,
// with empty site and group, is GroupServer's token.
func TestVerifyIgnoresSiteAndGroupRows(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)
			st := openMigrated(t, dsn)
			raw := openRaw(t, dsn)
			siteToken, groupToken := newToken(t), newToken(t)
			raw.insertOption(t, "gs.auth.token", "authToken", "example", "", siteToken)
			raw.insertOption(t, "gs.auth.token", "authToken", "", "team", groupToken)

			for name, tok := range map[string]string{"site row": siteToken, "group row": groupToken} {
				_, err := st.Verify(ctx, "example", tok)
				if !errors.Is(err, token.ErrMismatch) {
					t.Errorf("Verify(%s token) error = %v, expected a token mismatch", name, err)
				}
			}
		})
	}
}

func TestVerifyRejectsInvalidStoredValue(t *testing.T) {
	legacy := "Vq8ZrT3nL6wX1cK9mB4hJ7pD2sF5gA0e"
	tests := []struct {
		name    string
		stored  any
		wantLog string
	}{
		{"trailing newline", legacy + "\n", "whitespace"},
		{"leading space", " " + legacy, "whitespace"},
		{"non-ASCII", legacy + "é", "printable ASCII"},
		{"empty", "", "empty"},
		{"NULL", nil, "NULL"},
	}
	for _, b := range testdb.Backends() {
		for _, tt := range tests {
			t.Run(b.Name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				dsn := b.New(t)
				var logs bytes.Buffer
				st := openMigrated(t, dsn, store.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				openRaw(t, dsn).insertOption(t, "gs.auth.token", "authToken", "", "", tt.stored)

				set, err := st.TokenSet(ctx, "")
				if err != nil {
					t.Fatalf("TokenSet failed: %v", err)
				}
				if set.Len() != 0 {
					t.Errorf("TokenSet has %d tokens, expected the invalid value to be left out", set.Len())
				}
				for _, supplied := range []string{legacy, legacy + "\n", " " + legacy} {
					_, err := st.Verify(ctx, "", supplied)
					if !errors.Is(err, token.ErrMismatch) {
						t.Errorf("Verify(%q) error = %v, expected a token mismatch", supplied, err)
					}
				}

				log := logs.String()
				if !strings.Contains(log, "level=WARN") {
					t.Errorf("log has no warning:\n%s", log)
				}
				if !strings.Contains(log, "stored token is invalid") {
					t.Errorf("log does not say the stored token is invalid:\n%s", log)
				}
				if !strings.Contains(log, tt.wantLog) {
					t.Errorf("log does not name the problem %q:\n%s", tt.wantLog, log)
				}
				if strings.Contains(log, legacy[:8]) {
					t.Errorf("log contains the stored value:\n%s", log)
				}
			})
		}
	}
}

// TestVerifyKeepsValidAmongInvalid checks that an invalid row does not hide
// a valid one.
func TestVerifyKeepsValidAmongInvalid(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.SQLite(t)
	raw := openRaw(t, dsn)
	raw.createGroupServerTables(t)
	// GroupServer's table has a unique index on the key, but an old install
	// without it could hold two rows for the token.
	raw.exec(t, "DROP INDEX option_key_idx")
	legacy := newToken(t)
	raw.insertOption(t, "gs.auth.token", "authToken", "", "", legacy+"\n")
	raw.insertOption(t, "gs.auth.token", "authToken", "", "", legacy)
	st := openMigrated(t, dsn)

	if _, err := st.Verify(ctx, "", legacy); err != nil {
		t.Errorf("Verify(valid token beside an invalid row) failed: %v", err)
	}
}

func TestVerifyEmptyStore(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openMigrated(t, b.New(t))

			_, err := st.Verify(context.Background(), "", newToken(t))

			var me *token.MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Verify on an empty store error = %v, expected a *token.MismatchError", err)
			}
			if me.Reason != token.ReasonNoneStored {
				t.Errorf("Verify on an empty store reason = %v, expected %v", me.Reason, token.ReasonNoneStored)
			}
		})
	}
}

func TestVerifyWithoutTablesFails(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openStore(t, b.New(t))

			entry, err := st.Verify(context.Background(), "", newToken(t))

			if err == nil {
				t.Errorf("Verify without an option table accepted the token as %q, expected an error", entry.ID)
			}
		})
	}
}

func TestMigrateUnexpectedSchema(t *testing.T) {
	tests := []struct {
		name      string
		create    string
		wantTable string
	}{
		{"option without value", "CREATE TABLE option (component_id TEXT, option_id TEXT, site_id TEXT, group_id TEXT)", "option"},
		{"option without group_id", "CREATE TABLE option (component_id TEXT, option_id TEXT, site_id TEXT, value TEXT)", "option"},
		{"option of another application", "CREATE TABLE option (name TEXT PRIMARY KEY, setting TEXT)", "option"},
		{"audit_event without event_date", "CREATE TABLE audit_event (id TEXT PRIMARY KEY, subsystem TEXT, event_code TEXT)", "audit_event"},
	}
	for _, b := range testdb.Backends() {
		for _, tt := range tests {
			t.Run(b.Name+"/"+tt.name, func(t *testing.T) {
				dsn := b.New(t)
				openRaw(t, dsn).exec(t, tt.create)
				st := openStore(t, dsn)

				err := st.Migrate(context.Background())

				if err == nil {
					t.Fatal("Migrate succeeded, expected an error matching store.ErrSchema")
				}
				if !errors.Is(err, store.ErrSchema) {
					t.Errorf("Migrate error %v does not match store.ErrSchema", err)
				}
				if errors.Is(err, store.ErrUnavailable) {
					t.Errorf("Migrate error %v matches store.ErrUnavailable, expected only store.ErrSchema", err)
				}
				if !strings.Contains(err.Error(), "table "+tt.wantTable) {
					t.Errorf("Migrate error %q does not name table %s", err, tt.wantTable)
				}
			})
		}
	}
}

func TestReplaceLegacyTokenLeavesOneRow(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)
			raw := openRaw(t, dsn)
			raw.createGroupServerTables(t)
			old := newToken(t)
			raw.insertOption(t, "gs.auth.token", "authToken", "", "", old)
			raw.insertOption(t, "gs.auth.token", "authToken", "example", "", newToken(t))
			raw.insertOption(t, "gs.auth.token", "authToken", "example", "team", newToken(t))
			raw.insertOption(t, "gs.auth.token", "otherOption", "", "", "kept")
			raw.insertOption(t, "gs.site.config", "authToken", "", "", "kept too")
			st := openMigrated(t, dsn)
			fresh := newToken(t)

			if err := st.ReplaceLegacyToken(ctx, fresh); err != nil {
				t.Fatalf("ReplaceLegacyToken failed: %v", err)
			}

			rows := raw.columnValues(t, "SELECT site_id || '/' || group_id || '=' || value FROM option WHERE component_id = 'gs.auth.token' AND option_id = 'authToken'")
			if len(rows) != 1 {
				t.Fatalf("found %d token rows after ReplaceLegacyToken, expected 1", len(rows))
			}
			if rows[0] != "/="+fresh {
				t.Errorf("token row = %q, expected the new token with empty site and group", rows[0])
			}
			if n := raw.count(t, "SELECT COUNT(*) FROM option WHERE value IN ('kept', 'kept too')"); n != 2 {
				t.Errorf("found %d unrelated option rows after ReplaceLegacyToken, expected 2", n)
			}
			if _, err := st.Verify(ctx, "", fresh); err != nil {
				t.Errorf("Verify(new token) failed: %v", err)
			}
			if _, err := st.Verify(ctx, "", old); !errors.Is(err, token.ErrMismatch) {
				t.Errorf("Verify(old token) error = %v, expected a token mismatch", err)
			}
		})
	}
}

func TestReplaceLegacyTokenRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.SQLite(t)
	st := openMigrated(t, dsn)
	old := newToken(t)
	if err := st.ReplaceLegacyToken(ctx, old); err != nil {
		t.Fatalf("ReplaceLegacyToken failed: %v", err)
	}

	for _, bad := range []string{"", old + "\n", " " + old, old + "é"} {
		if err := st.ReplaceLegacyToken(ctx, bad); err == nil {
			t.Errorf("ReplaceLegacyToken(%q) succeeded, expected an error", bad)
		}
	}

	values := openRaw(t, dsn).legacyValues(t)
	if len(values) != 1 {
		t.Fatalf("found %d token rows after rejected replacements, expected 1", len(values))
	}
	if values[0] != old {
		t.Errorf("token row after rejected replacements = %q, expected the old token", values[0])
	}
}

// TestReplaceLegacyTokenAtomic runs readers that keep reading the token set
// while 100 replacements run, two at a time. Every read must find exactly
// one token: a replacement that deleted the old row before inserting the
// new one, outside a transaction, would let a reader see none.
func TestReplaceLegacyTokenAtomic(t *testing.T) {
	const (
		readers      = 4
		writers      = 2
		replacements = 100
	)
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.New(t)
			st := openMigrated(t, dsn)
			if err := st.ReplaceLegacyToken(ctx, newToken(t)); err != nil {
				t.Fatalf("first ReplaceLegacyToken failed: %v", err)
			}
			tokens := make([]string, replacements)
			for i := range tokens {
				tokens[i] = newToken(t)
			}

			var (
				mu             sync.Mutex
				readErrs       []error
				emptyReads     int
				multipleReads  int
				readsInWriting int
				writing        bool
				stop           bool
			)
			var ready, readerGroup sync.WaitGroup
			ready.Add(readers)
			for range readers {
				readerGroup.Go(func() {
					first := true
					for {
						mu.Lock()
						done, during := stop, writing
						mu.Unlock()
						if done {
							return
						}
						set, err := st.TokenSet(ctx, "")
						mu.Lock()
						switch {
						case err != nil:
							readErrs = append(readErrs, err)
						case set.Len() == 0:
							emptyReads++
						case set.Len() > 1:
							multipleReads++
						}
						if during {
							readsInWriting++
						}
						mu.Unlock()
						if first {
							ready.Done()
							first = false
						}
						if err != nil {
							return
						}
					}
				})
			}
			ready.Wait()

			mu.Lock()
			writing = true
			mu.Unlock()
			writeErrs := make([]error, writers)
			var writerGroup sync.WaitGroup
			share := replacements / writers
			for w := range writers {
				writerGroup.Go(func() {
					for _, tok := range tokens[w*share : (w+1)*share] {
						if err := st.ReplaceLegacyToken(ctx, tok); err != nil {
							writeErrs[w] = err
							return
						}
					}
				})
			}
			writerGroup.Wait()
			mu.Lock()
			writing, stop = false, true
			mu.Unlock()
			readerGroup.Wait()

			for w, err := range writeErrs {
				if err != nil {
					t.Errorf("writer %d: ReplaceLegacyToken failed: %v", w, err)
				}
			}
			for _, err := range readErrs {
				t.Errorf("TokenSet failed during replacements: %v", err)
			}
			if emptyReads != 0 {
				t.Errorf("%d reads found no token during replacements, expected none", emptyReads)
			}
			if multipleReads != 0 {
				t.Errorf("%d reads found more than one token during replacements, expected none", multipleReads)
			}
			if readsInWriting == 0 {
				t.Errorf("no read ran while replacements ran, so the test checked nothing")
			}
			values := openRaw(t, dsn).legacyValues(t)
			if len(values) != 1 {
				t.Fatalf("found %d token rows after the replacements, expected 1", len(values))
			}
			lastOfEach := map[string]bool{tokens[share-1]: true, tokens[replacements-1]: true}
			if !lastOfEach[values[0]] {
				t.Errorf("remaining token is not the last one written by either writer")
			}
		})
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")

	openStore(t, "sqlite:"+path)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Open did not create %s: %v", path, err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("new SQLite file has mode %#o, expected 0600", perm)
	}
}

func TestOpenKeepsExistingFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}

	openMigrated(t, "sqlite:"+path)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o640 {
		t.Errorf("existing SQLite file has mode %#o after Open, expected 0640", perm)
	}
}

// openMigrateReplace opens dsn, migrates it and replaces the token, and
// returns the first error.
func openMigrateReplace(dsn string) error {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	tok, err := token.Generate()
	if err != nil {
		return err
	}
	return st.ReplaceLegacyToken(ctx, tok)
}

func TestSQLiteUnavailable(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the DSN
	}{
		{"directory", func(t *testing.T) string {
			return "sqlite:" + t.TempDir()
		}},
		{"missing parent", func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "missing", "tokens.db")
		}},
		{"read-only empty file", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "tokens.db")
			if err := os.WriteFile(path, nil, 0o444); err != nil {
				t.Fatal(err)
			}
			return "sqlite:" + path
		}},
		{"read-only migrated file", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "tokens.db")
			if err := openMigrateReplace("sqlite:" + path); err != nil {
				t.Fatalf("preparing %s failed: %v", path, err)
			}
			if err := os.Chmod(path, 0o444); err != nil {
				t.Fatal(err)
			}
			return "sqlite:" + path
		}},
		{"not a database", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "tokens.db")
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 100), 0o600); err != nil {
				t.Fatal(err)
			}
			return "sqlite:" + path
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := tt.setup(t)

			err := openMigrateReplace(dsn)

			if err == nil {
				t.Fatal("opening, migrating and writing succeeded, expected an error")
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("error %v does not match store.ErrUnavailable", err)
			}
			var oe *store.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("error %T is not a *store.OpError", err)
			}
			if oe.Hint == "" {
				t.Errorf("error %v has no hint", err)
			}
		})
	}
}

func TestReadOnlyFileStillVerifies(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.db")
	st := openMigrated(t, "sqlite:"+path)
	legacy := newToken(t)
	if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}

	ro := openStore(t, "sqlite:"+path)
	_, verifyErr := ro.Verify(ctx, "", legacy)
	replaceErr := ro.ReplaceLegacyToken(ctx, newToken(t))

	if verifyErr != nil {
		t.Errorf("Verify on a read-only file failed: %v", verifyErr)
	}
	if !errors.Is(replaceErr, store.ErrUnavailable) {
		t.Errorf("ReplaceLegacyToken on a read-only file error = %v, expected one matching store.ErrUnavailable", replaceErr)
	}
	var oe *store.OpError
	if errors.As(replaceErr, &oe) && !strings.Contains(oe.Hint, "read-only") {
		t.Errorf("ReplaceLegacyToken hint = %q, expected it to say the file is read-only", oe.Hint)
	}
}

func TestPostgresUnavailable(t *testing.T) {
	base := testdb.BaseDSN(t)
	tests := []struct {
		name     string
		dsn      string
		wantHint string
	}{
		{"closed port", "postgres://gs:" + canary + "@127.0.0.1:1/gs?sslmode=disable&connect_timeout=5", "check the host and port"},
		{"missing database", withDatabase(t, withUser(t, base, "postgres", canary), "gsat_no_such_database"), "create the database first"},
		{"unknown role", withUser(t, base, "gsat_no_such_role", canary), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", canary)

			st, err := store.Open(context.Background(), tt.dsn)

			if err == nil {
				st.Close()
				t.Fatal("Open succeeded, expected an error")
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Open error %v does not match store.ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("Open error %q contains the password", err)
			}
			var oe *store.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("Open error %T is not a *store.OpError", err)
			}
			if !strings.Contains(oe.Hint, tt.wantHint) {
				t.Errorf("Open hint = %q, expected it to contain %q", oe.Hint, tt.wantHint)
			}
		})
	}
}

func TestPostgresWrongPassword(t *testing.T) {
	tests := []struct {
		name       string
		echo       bool
		password   string // in the DSN
		pgpassword string
		sslmode    string
	}{
		{"password in DSN", false, canary, "", "disable"},
		{"password from PGPASSWORD", false, "", canary, "disable"},
		{"server echoes password", true, canary, "", "disable"},
		{"server echoes PGPASSWORD", true, "", canary, "disable"},
		{"TLS declined", false, canary, "", "prefer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", tt.pgpassword)
			server := fakepg.Start(t, tt.echo)
			userinfo := "gs"
			if tt.password != "" {
				userinfo += ":" + tt.password
			}
			dsn := "postgres://" + userinfo + "@" + server.Addr + "/groupserver?sslmode=" + tt.sslmode

			st, err := store.Open(context.Background(), dsn)

			if err == nil {
				st.Close()
				t.Fatal("Open succeeded, expected a failed login")
			}
			if got := server.Received(); len(got) == 0 || got[0] != canary {
				t.Errorf("fake server received passwords %q, expected the client to send %q", got, canary)
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Open error %v does not match store.ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "28P01") {
				t.Errorf("Open error %q does not name SQLSTATE 28P01", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("Open error %q contains the password", err)
			}
			var oe *store.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("Open error %T is not a *store.OpError", err)
			}
			if !strings.Contains(oe.Hint, "check the user name and password") {
				t.Errorf("Open hint = %q, expected it to say to check the user name and password", oe.Hint)
			}
		})
	}
}

// tcpProxy forwards connections from a loopback port to target until it is
// cut, to simulate a database server that goes away.
type tcpProxy struct {
	addr     string
	listener net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1 failed: %v", err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), listener: ln}
	p.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(server, client); server.Close() })
			p.wg.Go(func() { io.Copy(client, server); client.Close() })
		}
	})
	t.Cleanup(p.cut)
	return p
}

// cut closes the listening port and every forwarded connection.
func (p *tcpProxy) cut() {
	p.listener.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestVerifyServerGone checks that Verify fails closed, with an error
// matching ErrUnavailable, once the PostgreSQL server cannot be reached.
func TestVerifyServerGone(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	st := openMigrated(t, dsn)
	legacy := newToken(t)
	if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	proxied := openStore(t, u.String())
	if _, err := proxied.Verify(ctx, "", legacy); err != nil {
		t.Fatalf("Verify through the proxy failed: %v", err)
	}

	proxy.cut()
	entry, err := proxied.Verify(ctx, "", legacy)

	if err == nil {
		t.Fatalf("Verify after the server went away accepted the token as %q, expected an error", entry.ID)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Verify error %v does not match store.ErrUnavailable", err)
	}
	if errors.Is(err, token.ErrMismatch) {
		t.Errorf("Verify error %v matches token.ErrMismatch, expected only store.ErrUnavailable", err)
	}
}
