package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// benchCache returns a cache over a SQLite store with one named token and
// GroupServer's plain-text token, and both tokens.
func benchCache(b *testing.B) (c *store.Cache, named, legacy string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if named, _, err = st.CreateToken(ctx, "bench", "", 0); err != nil {
		b.Fatal(err)
	}
	if legacy, err = token.Generate(); err != nil {
		b.Fatal(err)
	}
	if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
		b.Fatal(err)
	}
	if c, err = st.NewCache(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c, named, legacy
}

func BenchmarkCacheVerify(b *testing.B) {
	c, named, legacy := benchCache(b)
	ctx := context.Background()
	wrongSecret := named[:len(named)-7] + "x" + named[len(named)-6:]
	unknownID, _, err := token.New()
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, token string
		ok          bool
	}{
		{"hit", named, true},
		{"hit-legacy", legacy, true},
		{"miss-legacy-format", "a" + legacy[1:], false},
		{"bad-checksum", wrongSecret, false},
		// An unknown id is looked up in the database, as a token made on
		// another instance a moment ago may be new.
		{"unknown-id", unknownID, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := c.Verify(ctx, "", tc.token)
				if (err == nil) != tc.ok {
					b.Fatalf("Verify error = %v, want ok %v", err, tc.ok)
				}
			}
		})
	}
}

func BenchmarkStoreVerify(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, "bench", "", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Verify(ctx, "", tok); err != nil {
			b.Fatal(err)
		}
	}
}
