// Package testdb gives each test its own database: a fresh SQLite file, or
// a fresh schema in the PostgreSQL named by GS_AUTH_TOKEN_TEST_DSN.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the PostgreSQL server for tests. Without it, PostgreSQL tests
// skip; with it, a server that cannot be reached fails them.
const EnvDSN = "GS_AUTH_TOKEN_TEST_DSN"

// Backend is one store a test can run against.
type Backend struct {
	// Name is "sqlite" or "postgresql", for subtest names.
	Name string
	// New returns the DSN of a new, empty database for t.
	New func(t testing.TB) string
}

// Backends returns both backends, for tests that must behave the same on
// each. The PostgreSQL one skips when GS_AUTH_TOKEN_TEST_DSN is unset.
func Backends() []Backend {
	return []Backend{{Name: "sqlite", New: SQLite}, {Name: "postgresql", New: Postgres}}
}

// SQLite returns the DSN of a new SQLite file in t's temporary directory.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "tokens.db")
}

// Postgres creates a schema of its own for t, drops it when t ends, and
// returns a DSN whose search_path selects it.
func Postgres(t testing.TB) string {
	t.Helper()
	base := BaseDSN(t)
	schema := "gsat_test_" + randomHex(t, 8)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s=%s failed: %v", EnvDSN, base, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s failed: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connecting to drop schema %s failed: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s failed: %v", schema, err)
		}
	})
	return WithParam(base, "search_path", schema)
}

// BaseDSN returns GS_AUTH_TOKEN_TEST_DSN, or skips t when it is unset.
func BaseDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		t.Skipf("skipping PostgreSQL test: set %s, for example to postgres://postgres@127.0.0.1:5432/test", EnvDSN)
	}
	return base
}

// WithParam returns dsn with the query parameter key set to value.
func WithParam(dsn, key, value string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
