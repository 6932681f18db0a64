package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// lifecycleLogUses adds a trigger that copies every write to
// gs_auth_token_use into the table lifecycle_use_log, so that a test can
// count the writes as well as read their result.
func lifecycleLogUses(t *testing.T, raw *lifecycleDB) {
	t.Helper()
	if raw.postgres {
		raw.exec(t, "CREATE TABLE lifecycle_use_log (token_id TEXT NOT NULL, last_used_at TIMESTAMP WITH TIME ZONE NOT NULL)")
		raw.exec(t, `CREATE FUNCTION lifecycle_log_use() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				INSERT INTO lifecycle_use_log VALUES (NEW.token_id, NEW.last_used_at);
				RETURN NEW;
			END $$`)
		raw.exec(t, `CREATE TRIGGER lifecycle_use_write AFTER INSERT OR UPDATE ON gs_auth_token_use
			FOR EACH ROW EXECUTE FUNCTION lifecycle_log_use()`)
		return
	}
	raw.exec(t, "CREATE TABLE lifecycle_use_log (token_id TEXT NOT NULL, last_used_at TEXT NOT NULL)")
	for _, event := range []string{"INSERT", "UPDATE"} {
		raw.exec(t, "CREATE TRIGGER lifecycle_use_"+event+" AFTER "+event+` ON gs_auth_token_use
			BEGIN
				INSERT INTO lifecycle_use_log VALUES (NEW.token_id, NEW.last_used_at);
			END`)
	}
}

// lifecycleWrites returns how many times the last use of id was written.
func lifecycleWrites(t *testing.T, raw *lifecycleDB, id string) int {
	t.Helper()
	return raw.count(t, "SELECT COUNT(*) FROM lifecycle_use_log WHERE token_id = ?", id)
}

func TestLastUseRecordedAfterClose(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		used, usedInfo := lifecycleCreate(t, st, "used", "", 0)
		_, idleInfo := lifecycleCreate(t, st, "idle", "", 0)
		clock.Advance(5 * time.Minute)

		lifecycleAccepted(t, st, "site-a", used, usedInfo.ID)
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		reopened := lifecycleOpen(t, dsn, clock)
		lifecycleSameTime(t, "LastUsed of the used token", lifecycleFind(t, reopened, usedInfo.ID).LastUsed, lifecycleStart.Add(5*time.Minute))
		if got := lifecycleFind(t, reopened, idleInfo.ID).LastUsed; !got.IsZero() {
			t.Errorf("LastUsed of the idle token = %s, expected zero", got)
		}
	})
}

// TestLastUseNotRecordedOnRejection checks that a token that fails to
// authenticate a request is not counted as used.
func TestLastUseNotRecordedOnRejection(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		expired, _ := lifecycleCreate(t, st, "expired", "", time.Minute)
		revoked, revokedInfo := lifecycleCreate(t, st, "revoked", "", 0)
		if _, err := st.RevokeToken(ctx, revokedInfo.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		other, _ := lifecycleCreate(t, st, "other", "site-b", 0)
		valid, _ := lifecycleCreate(t, st, "valid", "", 0)
		clock.Advance(time.Hour)

		lifecycleRejected(t, st, "site-a", expired, token.ReasonExpired)
		lifecycleRejected(t, st, "site-a", revoked, token.ReasonRevoked)
		lifecycleRejected(t, st, "site-a", other, token.ReasonWrongSite)
		lifecycleRejected(t, st, "site-a", lifecycleWrongSecret(t, valid), token.ReasonUnknown)
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		raw := lifecycleRaw(t, dsn)
		if n := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token_use"); n != 0 {
			t.Errorf("gs_auth_token_use has %d rows after rejected tokens only, expected 0", n)
		}
	})
}

func TestLastUseOncePerInterval(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		raw := lifecycleRaw(t, dsn)
		lifecycleLogUses(t, raw)
		busy, busyInfo := lifecycleCreate(t, st, "busy", "", 0)
		quiet, quietInfo := lifecycleCreate(t, st, "quiet", "", 0)

		steps := []struct {
			at  time.Duration
			tok string
			id  string
		}{
			{0, busy, busyInfo.ID},
			{30 * time.Second, busy, busyInfo.ID},
			{30 * time.Second, quiet, quietInfo.ID},
			{store.LastUseInterval - time.Nanosecond, busy, busyInfo.ID},
			{store.LastUseInterval, busy, busyInfo.ID},
			{store.LastUseInterval + time.Second, busy, busyInfo.ID},
			{30*time.Second + store.LastUseInterval, quiet, quietInfo.ID},
		}
		for _, s := range steps {
			clock.Set(lifecycleStart.Add(s.at))
			lifecycleAccepted(t, st, "", s.tok, s.id)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		if n := lifecycleWrites(t, raw, busyInfo.ID); n != 2 {
			t.Errorf("last use of the busy token written %d times, expected 2: at the start and one interval later", n)
		}
		if n := lifecycleWrites(t, raw, quietInfo.ID); n != 2 {
			t.Errorf("last use of the quiet token written %d times, expected 2: at its first use and one interval later", n)
		}
		reopened := lifecycleOpen(t, dsn, clock)
		lifecycleSameTime(t, "LastUsed of the busy token", lifecycleFind(t, reopened, busyInfo.ID).LastUsed, lifecycleStart.Add(store.LastUseInterval))
		lifecycleSameTime(t, "LastUsed of the quiet token", lifecycleFind(t, reopened, quietInfo.ID).LastUsed, lifecycleStart.Add(30*time.Second+store.LastUseInterval))
	})
}

func TestLastUseConcurrentVerify(t *testing.T) {
	const callers = 16
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		raw := lifecycleRaw(t, dsn)
		lifecycleLogUses(t, raw)
		tok, info := lifecycleCreate(t, st, "gateway", "", 0)

		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if _, err := st.Verify(lifecycleContext(t), "", tok); err != nil {
					t.Errorf("concurrent Verify failed: %v", err)
				}
			})
		}
		wg.Wait()
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		if n := lifecycleWrites(t, raw, info.ID); n != 1 {
			t.Errorf("last use written %d times for %d uses at one instant, expected 1", n, callers)
		}
	})
}

func TestLastUseOfLegacyToken(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		legacy, err := token.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
			t.Fatalf("ReplaceLegacyToken failed: %v", err)
		}
		clock.Advance(3 * time.Minute)

		lifecycleAccepted(t, st, "site-a", legacy, store.LegacyTokenID)
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		reopened := lifecycleOpen(t, dsn, clock)
		exists, last, err := reopened.LegacyTokenStatus(lifecycleContext(t))
		if err != nil {
			t.Fatalf("LegacyTokenStatus failed: %v", err)
		}
		if !exists {
			t.Errorf("LegacyTokenStatus exists = false, expected true")
		}
		lifecycleSameTime(t, "legacy last use", last, lifecycleStart.Add(3*time.Minute))
	})
}
