// Package store keeps authentication tokens and audit events in SQLite or
// PostgreSQL, on GroupServer's own schema.
//
// # Backends
//
// [Open] chooses the backend from the DSN (see [ParseDSN]). SQLite, through
// the pure-Go modernc.org/sqlite driver, is the embedded default: one file,
// created with mode 0600 when missing. PostgreSQL, through pgx, is for
// production, where many instances share one database. Both have the same
// tables, made by migrations embedded in the binary (see [Store.Migrate]).
//
// # GroupServer compatibility
//
// GroupServer keeps its token in plain text in the option table, under
// component gs.auth.token and option authToken, with an empty site and
// group. A token written there by GroupServer's own tools verifies here, and
// [Store.ReplaceLegacyToken] writes one that GroupServer's hooks accept.
//
// # Errors
//
// Errors match [ErrInvalidDSN], [ErrUnavailable] or [ErrSchema] under
// [errors.Is]. None contains a password from the DSN.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultConnectTimeout bounds the time to connect to PostgreSQL when the
// DSN sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// sqliteBusyTimeout is the time, in milliseconds, that a SQLite connection
// waits for another writer before failing with "database is locked".
const sqliteBusyTimeout = 10000

// Store is a connection pool to one token database. It is safe for
// concurrent use.
type Store struct {
	db       *sql.DB
	dsn      DSN
	secrets  []string
	logger   *slog.Logger
	readOnly bool
	now      func() time.Time
	random   io.Reader
	usage    *usageRecorder
	caches   cacheSet
	noCreate bool

	warnMu sync.Mutex
	warned map[string]time.Time
}

// Option configures [Open].
type Option func(*Store)

// WithLogger sets the logger for warnings about stored data, such as a
// stored token that can never match. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.logger = l }
}

// WithoutCreate makes Open fail, with an error matching [ErrUnavailable],
// when a SQLite file does not exist, instead of creating it. Commands that
// only read or change existing tokens use it, so that a mistyped path is
// reported rather than served from a new, empty database.
func WithoutCreate() Option {
	return func(s *Store) { s.noCreate = true }
}

// WithClock sets the clock that decides expiry and dates new tokens and
// events. The default is [time.Now]; tests inject their own.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithRandom sets the random source of new tokens. The default is
// crypto/rand; tests inject a failing one.
func WithRandom(r io.Reader) Option {
	return func(s *Store) { s.random = r }
}

// Open parses dsn, opens the database and pings it. A SQLite
// file that does not exist is created with mode 0600. Open does not migrate:
// call [Store.Migrate] for that.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{dsn: d, secrets: passwordOf(dsn), logger: slog.New(slog.DiscardHandler), now: time.Now, random: rand.Reader}
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		s.secrets = append(s.secrets, pw)
	}
	for _, o := range opts {
		o(s)
	}

	switch d.Backend {
	case SQLite:
		err = s.openSQLite()
	case PostgreSQL:
		s.openPostgres()
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, s.opError("connect to", err)
	}
	s.usage = newUsageRecorder(s)
	return s, nil
}

// Backend returns the storage engine of the store.
func (s *Store) Backend() Backend { return s.dsn.Backend }

// DSN returns the store's data source name with its password masked.
func (s *Store) DSN() string { return s.dsn.String() }

// Close writes the last uses still queued and closes the connection pool.
func (s *Store) Close() error {
	s.usage.close()
	return s.db.Close()
}

func (s *Store) openPostgres() {
	cfg := s.dsn.pg.Copy()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	s.db = stdlib.OpenDB(*cfg)
	s.db.SetMaxOpenConns(20)
	s.db.SetMaxIdleConns(10)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
}

func (s *Store) openSQLite() error {
	path := s.dsn.Path
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return &OpError{Op: "open", Store: s.dsn.String(), unavailable: true,
			Err:  fmt.Errorf("%s is a directory, not a SQLite file", path),
			Hint: "name a file inside it, for example sqlite:" + filepath.Join(path, "gs-auth-token.db")}
	case errors.Is(err, fs.ErrNotExist) && s.noCreate:
		return &OpError{Op: "open", Store: s.dsn.String(), unavailable: true,
			Err:  fmt.Errorf("the SQLite file %s does not exist", path),
			Hint: "check the path, or create the database with 'gs-auth-token migrate --dsn sqlite:" + path + "'"}
	case errors.Is(err, fs.ErrNotExist):
		f, cerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr != nil && !errors.Is(cerr, fs.ErrExist) {
			return &OpError{Op: "create", Store: s.dsn.String(), unavailable: true, Err: unwrapPathError(cerr),
				Hint: "check that the directory " + filepath.Dir(path) + " exists and is writable"}
		}
		if f != nil {
			f.Close()
		}
	case err != nil:
		return &OpError{Op: "open", Store: s.dsn.String(), unavailable: true, Err: unwrapPathError(err)}
	default:
		// Root can write to any file, so a file without write permission
		// is opened read-only to honour its owner's intent.
		s.readOnly = info.Mode().Perm()&0o222 == 0
	}

	mode := "rw"
	if s.readOnly {
		mode = "ro"
	}
	q := "?mode=" + mode + "&_txlock=immediate&_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyTimeout) + ")"
	if !s.readOnly {
		q += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", "file:"+escapeSQLitePath(path)+q)
	if err != nil {
		return s.opError("open", err)
	}
	s.db = db
	return nil
}

// escapeSQLitePath percent-encodes the characters that a SQLite file: URI
// gives a meaning to.
func escapeSQLitePath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(p)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// opError wraps err from a driver as an [*OpError], with passwords scrubbed
// from its message and a hint for common causes.
func (s *Store) opError(op string, err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{
		Op:          op,
		Store:       s.dsn.String(),
		Err:         &scrubbedError{msg: scrub(describe(err), s.secrets), err: err},
		Hint:        s.hintFor(err),
		unavailable: isUnavailable(err),
	}
}

// describe returns the useful part of a driver error: for a failed
// PostgreSQL connection, the innermost cause instead of pgx's list of every
// address it tried.
func describe(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return "cannot reach the server: " + oe.Error()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "cannot reach the server: connection timed out"
		}
		inner := err
		for errors.Unwrap(inner) != nil {
			inner = errors.Unwrap(inner)
		}
		return "cannot connect: " + inner.Error()
	}
	return err.Error()
}

func (s *Store) scrub(err error) string {
	return scrub(err.Error(), s.secrets)
}

// isUnavailable reports whether err means the database could not be reached
// or opened, as opposed to a failed statement.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// A connection cut mid-answer ends in an EOF from the driver.
		return true
	}

	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}

	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}

	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "28"), // invalid authorization
			strings.HasPrefix(pe.Code, "53"), // insufficient resources
			strings.HasPrefix(pe.Code, "57"), // operator intervention, such as a shutdown
			pe.Code == "3D000":               // database does not exist
			return true
		}
		return false
	}

	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PERM,
			sqlite3.SQLITE_CORRUPT:
			return true
		}
		return false
	}

	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		return true
	}

	// pgconn reports a lost connection as a plain error wrapping io errors.
	var pgSafe interface{ SafeToRetry() bool }
	return errors.As(err, &pgSafe)
}

func (s *Store) hintFor(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "42P01":
			return "run 'gs-auth-token migrate' to create the tables; if migrate fails so too, check that the schema named by search_path exists (CREATE SCHEMA name)"
		case pe.Code == "28P01" || pe.Code == "28000":
			return "check the user name and password; the password may also come from PGPASSWORD or ~/.pgpass"
		case pe.Code == "3D000":
			return "create the database first (createdb NAME), or fix the database name in the DSN"
		case pe.Code == "42501":
			return "grant the user the privileges this command needs on the option and audit_event tables"
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		return "check the host and port in the DSN, and that PostgreSQL is running and listening there"
	case strings.Contains(msg, "no such host"):
		return "check the host name in the DSN"
	case strings.Contains(msg, "timeout") || errors.Is(err, context.DeadlineExceeded):
		return "check that the host is reachable and that no firewall drops the connection"
	case strings.Contains(msg, "password authentication failed"):
		return "check the user name and password; the password may also come from PGPASSWORD or ~/.pgpass"
	case strings.Contains(msg, "does not exist") && strings.Contains(msg, "database"):
		return "create the database first (createdb NAME), or fix the database name in the DSN"
	case strings.Contains(msg, "readonly database") || strings.Contains(msg, "read-only"):
		return "the SQLite file is read-only; make it writable (chmod u+w) or name another file"
	case strings.Contains(msg, "no such table"):
		return "run 'gs-auth-token migrate' to create the tables"
	case strings.Contains(msg, "not a database"):
		return "the file is not a SQLite database; name another file"
	}
	return ""
}

// rebind rewrites the ? placeholders of query into PostgreSQL's $1, $2, …
// when the store is PostgreSQL. Queries in this package contain no literal
// question marks.
func (s *Store) rebind(query string) string {
	if s.dsn.Backend != PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
