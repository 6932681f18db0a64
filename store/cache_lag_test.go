package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// TestCacheSeesRevocationFromOtherInstance opens two stores on one
// PostgreSQL schema, as two instances would, and checks that a revocation
// made through one is refused by the other's cache after the notification
// arrives, well before the staleness bound.
func TestCacheSeesRevocationFromOtherInstance(t *testing.T) {
	dsn := testdb.Postgres(t)
	ctx := context.Background()
	a := cacheOpenStore(t, dsn)
	b := cacheOpenStore(t, dsn)

	tok, _, err := a.CreateToken(ctx, "mail-gateway", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := b.NewCache(ctx, store.WithStaleness(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	cacheWaitFor(t, "listener connected", func() bool { return cache.Stats().Listening })
	if _, err := cache.Verify(ctx, "", tok); err != nil {
		t.Fatalf("Verify before revocation: %v", err)
	}

	if _, err := a.RevokeToken(ctx, "mail-gateway", ""); err != nil {
		t.Fatal(err)
	}
	cacheWaitFor(t, "revocation seen", func() bool {
		_, err := cache.Verify(ctx, "", tok)
		var me *token.MismatchError
		return errors.As(err, &me) && me.Reason == token.ReasonRevoked
	})
	if cache.Stats().Notifications == 0 {
		t.Error("no notification was received, so the revocation was seen by another path")
	}
}

func cacheOpenStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond every 5 ms for up to 10 seconds.
func cacheWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheUnknownBesideNamedTokens checks that a wrong token in
// GroupServer's format is reported as unknown, not as "no token stored",
// when only named tokens exist.
func TestCacheUnknownBesideNamedTokens(t *testing.T) {
	ctx := context.Background()
	st := cacheOpenStore(t, testdb.SQLite(t))
	if _, _, err := st.CreateToken(ctx, "crm", "", 0); err != nil {
		t.Fatal(err)
	}
	cache, err := st.NewCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()

	_, err = cache.Verify(ctx, "", "wrong")
	var me *token.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Verify error = %v, want a MismatchError", err)
	}
	if me.Reason != token.ReasonUnknown {
		t.Errorf("reason = %v, want %v", me.Reason, token.ReasonUnknown)
	}
}
