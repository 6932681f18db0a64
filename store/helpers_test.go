package store_test

import (
	"context"
	"database/sql"
	"net/url"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for rawDB

	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// canary is the password in every test DSN that can carry one. No message
// may contain it.
const canary = "s3cr3t-canary"

// rawDB is a direct connection to a test database, bypassing the store, to
// set up tables as GroupServer would and to inspect what the store wrote.
type rawDB struct {
	db       *sql.DB
	postgres bool
}

// openRaw opens the database that dsn (as returned by testdb) names.
func openRaw(t *testing.T, dsn string) *rawDB {
	t.Helper()
	r := &rawDB{postgres: !strings.HasPrefix(dsn, "sqlite:")}
	driver, source := "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	if r.postgres {
		driver, source = "pgx", dsn
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatalf("opening %s directly failed: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	return r
}

// bind rewrites ? placeholders as $1, $2, … for PostgreSQL.
func (r *rawDB) bind(query string) string {
	if !r.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *rawDB) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := r.db.Exec(r.bind(query), args...); err != nil {
		t.Fatalf("executing %q failed: %v", query, err)
	}
}

func (r *rawDB) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(r.bind(query), args...).Scan(&n); err != nil {
		t.Fatalf("querying %q failed: %v", query, err)
	}
	return n
}

// columnValues returns the first column of every row of query, with NULL as
// "<NULL>".
func (r *rawDB) columnValues(t *testing.T, query string, args ...any) []string {
	t.Helper()
	rows, err := r.db.Query(r.bind(query), args...)
	if err != nil {
		t.Fatalf("querying %q failed: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scanning %q failed: %v", query, err)
		}
		if !v.Valid {
			v.String = "<NULL>"
		}
		out = append(out, v.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading %q failed: %v", query, err)
	}
	return out
}

// value returns the first column of the one row of query, with NULL as
// "<NULL>", failing t unless there is exactly one row.
func (r *rawDB) value(t *testing.T, query string, args ...any) string {
	t.Helper()
	values := r.columnValues(t, query, args...)
	if len(values) != 1 {
		t.Fatalf("query %q returned %d rows, expected 1", query, len(values))
	}
	return values[0]
}

// legacyValues returns the values of every gs.auth.token/authToken row.
func (r *rawDB) legacyValues(t *testing.T) []string {
	t.Helper()
	return r.columnValues(t, "SELECT value FROM option WHERE component_id = 'gs.auth.token' AND option_id = 'authToken' ORDER BY site_id, group_id")
}

// createGroupServerTables creates the option and audit_event tables by hand,
// as a GroupServer install has them, with a unique index on the option key.
func (r *rawDB) createGroupServerTables(t *testing.T) {
	t.Helper()
	r.exec(t, `CREATE TABLE option (
		component_id TEXT NOT NULL,
		option_id    TEXT NOT NULL,
		site_id      TEXT NOT NULL,
		group_id     TEXT NOT NULL,
		value        TEXT)`)
	r.exec(t, "CREATE UNIQUE INDEX option_key_idx ON option (component_id, option_id, site_id, group_id)")
	r.exec(t, `CREATE TABLE audit_event (
		id                  TEXT PRIMARY KEY,
		event_date          TIMESTAMP WITH TIME ZONE NOT NULL,
		subsystem           TEXT NOT NULL,
		event_code          TEXT NOT NULL,
		user_id             TEXT DEFAULT NULL,
		instance_user_id    TEXT DEFAULT NULL,
		site_id             TEXT DEFAULT NULL,
		group_id            TEXT DEFAULT NULL,
		instance_datum      TEXT DEFAULT NULL,
		supplementary_datum TEXT DEFAULT NULL)`)
}

// insertOption inserts one option row, as GroupServer's tools do.
func (r *rawDB) insertOption(t *testing.T, component, option, site, group string, value any) {
	t.Helper()
	r.exec(t, "INSERT INTO option (component_id, option_id, site_id, group_id, value) VALUES (?, ?, ?, ?, ?)",
		component, option, site, group, value)
}

// openStore opens dsn and closes the store when t ends.
func openStore(t *testing.T, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%s) failed: %v", store.Redact(dsn), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openMigrated opens dsn and migrates it.
func openMigrated(t *testing.T, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	st := openStore(t, dsn, opts...)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate(%s) failed: %v", st.DSN(), err)
	}
	return st
}

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := token.Generate()
	if err != nil {
		t.Fatalf("Generate() failed: %v", err)
	}
	return tok
}

// withUser returns the PostgreSQL URL dsn with its user information set to
// user and password.
func withUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s failed: %v", dsn, err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// withDatabase returns the PostgreSQL URL dsn naming database name instead.
func withDatabase(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s failed: %v", dsn, err)
	}
	u.Path = "/" + name
	return u.String()
}
