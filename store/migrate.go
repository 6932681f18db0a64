package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

// VersionTable is the table in which the migrations record the schema
// version. Its name keeps it apart from other users of goose in a shared
// GroupServer database.
const VersionTable = "gs_auth_token_db_version"

// migrationLockID is the PostgreSQL advisory lock that serialises
// migrations when several instances start at once.
const migrationLockID int64 = 0x6773617574680001

func (s *Store) newProvider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dsn.Backend))
	if err != nil {
		return nil, err
	}
	dialect := database.DialectSQLite3
	if s.dsn.Backend == PostgreSQL {
		dialect = database.DialectPostgres
	}
	gstore, err := database.NewStore(dialect, VersionTable)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithStore(gstore), goose.WithDisableGlobalRegistry(true)}
	if s.dsn.Backend == PostgreSQL {
		// Instances that start together wait for the first one's
		// migration, polling every second for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider("", s.db, sub, opts...)
}

// Migrate brings the schema up to date. It is idempotent, leaves existing
// GroupServer tables and rows alone, and is safe to run from several
// instances at once. It then checks that the tables have the columns this
// package uses, and returns an error matching [ErrSchema] if not.
func (s *Store) Migrate(ctx context.Context) error {
	if s.dsn.Backend == SQLite && !s.readOnly {
		unlock, err := lockFile(s.dsn.Path + "-migrate.lock")
		if err != nil {
			return s.opError("migrate", err)
		}
		defer unlock()
	}
	p, err := s.newProvider()
	if err != nil {
		return s.opError("migrate", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return s.opError("migrate", err)
	}
	return s.CheckSchema(ctx)
}

// lockFile takes an exclusive advisory lock on path, creating it with mode
// 0600, and returns the function that releases it. goose has no migration
// lock for SQLite, so processes that start together on one file take this
// one. It is a file of its own because closing any descriptor of the
// database file would drop SQLite's own POSIX locks on it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the migration lock failed: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("taking the migration lock %s failed: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// SchemaVersion returns the current and the latest schema versions.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, err := s.newProvider()
	if err != nil {
		return 0, 0, s.opError("read schema version", err)
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, s.opError("read schema version", err)
	}
	return current, latest, nil
}

// CheckSchema returns an error matching [ErrSchema] when the option or
// audit_event table lacks a column this package reads or writes.
func (s *Store) CheckSchema(ctx context.Context) error {
	checks := []struct{ table, columns string }{
		{"option", "component_id, option_id, site_id, group_id, value"},
		{"audit_event", "id, event_date, subsystem, event_code, user_id, instance_user_id, site_id, group_id, instance_datum, supplementary_datum"},
	}
	for _, c := range checks {
		rows, err := s.db.QueryContext(ctx, "SELECT "+c.columns+" FROM "+c.table+" WHERE 1 = 0")
		if err != nil {
			if isUnavailable(err) {
				return s.opError("check schema of", err)
			}
			problem := fmt.Errorf("%w: table %s must have the columns %s: %s", ErrSchema, c.table, c.columns, scrub(describe(err), s.secrets))
			if isMissingTable(err) {
				problem = fmt.Errorf("%w: table %s does not exist", ErrSchema, c.table)
			}
			return &OpError{Op: "check schema of", Store: s.dsn.String(), Err: problem,
				Hint: "the table may belong to another application; point the DSN at a GroupServer database or an empty one"}
		}
		rows.Close()
	}
	return nil
}

// isMissingTable reports whether err says that a table does not exist.
func isMissingTable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "42P01"
	}
	return strings.Contains(err.Error(), "no such table")
}
