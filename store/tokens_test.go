package store_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for lifecycleRaw

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// lifecycleStart is the time the injected clocks start at. It is a whole
// second, because PostgreSQL keeps times to the microsecond.
var lifecycleStart = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// lifecycleClock is a clock that moves only when a test moves it.
type lifecycleClock struct {
	mu  sync.Mutex
	now time.Time
}

func newLifecycleClock(start time.Time) *lifecycleClock { return &lifecycleClock{now: start} }

func (c *lifecycleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lifecycleClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *lifecycleClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lifecycleBackends runs f once per backend, as a subtest, with the DSN of
// a new, empty database.
func lifecycleBackends(t *testing.T, f func(t *testing.T, dsn string)) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f(t, b.New(t))
		})
	}
}

func lifecycleContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lifecycleOpen opens and migrates the store at dsn with clock as its
// clock, and closes it when t ends.
func lifecycleOpen(t testing.TB, dsn string, clock *lifecycleClock) *store.Store {
	t.Helper()
	ctx := lifecycleContext(t)
	st, err := store.Open(ctx, dsn, store.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("store.Open(%q) failed: %v", dsn, err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate failed: %v", err)
	}
	return st
}

// lifecycleDB is a direct connection to a test database, to inspect what
// the store wrote.
type lifecycleDB struct {
	db       *sql.DB
	postgres bool
}

func lifecycleRaw(t testing.TB, dsn string) *lifecycleDB {
	t.Helper()
	r := &lifecycleDB{postgres: !strings.HasPrefix(dsn, "sqlite:")}
	driver, source := "sqlite", "file:"+strings.TrimPrefix(dsn, "sqlite:")+"?_pragma=busy_timeout(10000)"
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

func (r *lifecycleDB) bind(query string) string {
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

func (r *lifecycleDB) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := r.db.Exec(r.bind(query), args...); err != nil {
		t.Fatalf("executing %q failed: %v", query, err)
	}
}

func (r *lifecycleDB) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(r.bind(query), args...).Scan(&n); err != nil {
		t.Fatalf("querying %q failed: %v", query, err)
	}
	return n
}

// cells returns every value of every row of table as text, each as
// "column=value".
func (r *lifecycleDB) cells(t testing.TB, table string) []string {
	t.Helper()
	rows, err := r.db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("reading table %s failed: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatalf("reading the columns of %s failed: %v", table, err)
	}
	var out []string
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("scanning table %s failed: %v", table, err)
		}
		for i, v := range values {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			out = append(out, fmt.Sprintf("%s=%v", cols[i], v))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading table %s failed: %v", table, err)
	}
	return out
}

// lifecycleForge returns a new-format token with the given id and secret
// and a valid checksum: the CRC-32 (IEEE) of the rest as six base-62
// digits, as the token package documents.
func lifecycleForge(id, secret string) string {
	body := token.Prefix + id + "_" + secret
	n := crc32.ChecksumIEEE([]byte(body))
	sum := make([]byte, token.ChecksumLength)
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = token.Alphabet[n%62]
		n /= 62
	}
	return body + string(sum)
}

// lifecycleParts returns the id and the secret of a new-format token.
func lifecycleParts(tok string) (id, secret string) {
	id = tok[len(token.Prefix) : len(token.Prefix)+token.IDLength]
	secret = tok[len(token.Prefix)+token.IDLength+1 : len(tok)-token.ChecksumLength]
	return id, secret
}

// lifecycleWrongSecret returns a token with the id of tok, another secret
// and a valid checksum.
func lifecycleWrongSecret(t testing.TB, tok string) string {
	t.Helper()
	id, secret := lifecycleParts(tok)
	other := strings.Repeat("Q", token.SecretLength)
	if other == secret {
		other = strings.Repeat("R", token.SecretLength)
	}
	forged := lifecycleForge(id, other)
	if _, err := token.ParseID(forged); err != nil {
		t.Fatalf("the forged token does not parse, so the test proves nothing: %v", err)
	}
	return forged
}

// lifecycleBadChecksum returns tok with its last character changed.
func lifecycleBadChecksum(tok string) string {
	last := tok[len(tok)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return tok[:len(tok)-1] + string(repl)
}

func lifecycleCreate(t testing.TB, st *store.Store, name, siteID string, expiresIn time.Duration) (string, store.Token) {
	t.Helper()
	tok, info, err := st.CreateToken(lifecycleContext(t), name, siteID, expiresIn)
	if err != nil {
		t.Fatalf("CreateToken(%q, site %q, %s) failed: %v", name, siteID, expiresIn, err)
	}
	return tok, info
}

func lifecycleRotate(t testing.TB, st *store.Store, name, siteID string, grace, expiresIn time.Duration) (string, store.Token, store.Token) {
	t.Helper()
	tok, info, old, err := st.RotateToken(lifecycleContext(t), name, siteID, grace, expiresIn)
	if err != nil {
		t.Fatalf("RotateToken(%q, site %q, grace %s, expires %s) failed: %v", name, siteID, grace, expiresIn, err)
	}
	return tok, info, old
}

// lifecycleAccepted asserts that st accepts tok on siteID as token id.
func lifecycleAccepted(t testing.TB, st *store.Store, siteID, tok, id string) token.Entry {
	t.Helper()
	entry, err := st.Verify(lifecycleContext(t), siteID, tok)
	if err != nil {
		t.Fatalf("Verify(site %q, token %s) failed: %v, expected it to be accepted", siteID, id, err)
	}
	if entry.ID != id {
		t.Errorf("Verify(site %q) entry ID = %q, expected %q", siteID, entry.ID, id)
	}
	return entry
}

// lifecycleRejected asserts that st rejects tok on siteID for reason want,
// and returns the mismatch.
func lifecycleRejected(t testing.TB, st *store.Store, siteID, tok string, want token.Reason) *token.MismatchError {
	t.Helper()
	entry, err := st.Verify(lifecycleContext(t), siteID, tok)
	if err == nil {
		t.Fatalf("Verify(site %q) accepted the token as %q, expected %v", siteID, entry.ID, want)
	}
	var me *token.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Verify(site %q) error = %v (%T), expected a *token.MismatchError", siteID, err, err)
	}
	if me.Reason != want {
		t.Errorf("Verify(site %q) reason = %v, expected %v", siteID, me.Reason, want)
	}
	if !errors.Is(err, token.ErrMismatch) {
		t.Errorf("Verify(site %q) error %v does not match token.ErrMismatch", siteID, err)
	}
	if entry != (token.Entry{}) {
		t.Errorf("Verify(site %q) returned entry %q with its error, expected the zero entry", siteID, entry.ID)
	}
	if tok != "" && strings.Contains(err.Error(), tok) {
		t.Errorf("Verify(site %q) error %q contains the token", siteID, err)
	}
	return me
}

// lifecycleNamed asserts that a mismatch names the token id and name.
func lifecycleNamed(t testing.TB, me *token.MismatchError, id, name string) {
	t.Helper()
	if me.TokenID != id {
		t.Errorf("mismatch TokenID = %q, expected %q", me.TokenID, id)
	}
	if me.TokenName != name {
		t.Errorf("mismatch TokenName = %q, expected %q", me.TokenName, name)
	}
}

// lifecycleAnonymous asserts that a mismatch names no token.
func lifecycleAnonymous(t testing.TB, me *token.MismatchError) {
	t.Helper()
	if me.TokenID != "" || me.TokenName != "" {
		t.Errorf("mismatch names token %q (%q), expected no token", me.TokenID, me.TokenName)
	}
}

// lifecycleFind returns the token with the given id from every site.
func lifecycleFind(t testing.TB, st *store.Store, id string) store.Token {
	t.Helper()
	tokens, err := st.ListTokens(lifecycleContext(t), "", true)
	if err != nil {
		t.Fatalf("ListTokens failed: %v", err)
	}
	for _, tk := range tokens {
		if tk.ID == id {
			return tk
		}
	}
	t.Fatalf("ListTokens has no token with id %q", id)
	return store.Token{}
}

func lifecycleSameTime(t testing.TB, field string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, expected %s", field, got.UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano))
	}
}

func TestCreateTokenStoresOnlyDigest(t *testing.T) {
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

		tok, info := lifecycleCreate(t, st, "mail-gateway", "", time.Hour)
		site, siteInfo := lifecycleCreate(t, st, "nightly-sync", "site-a", 0)
		lifecycleAccepted(t, st, "", tok, info.ID)
		lifecycleAccepted(t, st, "site-a", site, siteInfo.ID)
		lifecycleRejected(t, st, "site-b", site, token.ReasonWrongSite)
		if err := st.WriteAuditEvent(ctx, audit.Event{ID: "lifecycle-event", Date: lifecycleStart, Subsystem: audit.Subsystem,
			Code: audit.CodeWrongSite, SiteID: "site-b", SupplementaryDatum: "token " + siteInfo.ID}); err != nil {
			t.Fatalf("WriteAuditEvent failed: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		raw := lifecycleRaw(t, dsn)
		var cells []string
		for _, table := range []string{"gs_auth_token", "gs_auth_token_use", "option", "audit_event"} {
			cells = append(cells, raw.cells(t, table)...)
		}
		for _, tk := range []string{tok, site} {
			id, secret := lifecycleParts(tk)
			for _, c := range cells {
				if strings.Contains(c, secret) {
					t.Errorf("the secret of token %s is stored in plain text: %q", id, c)
				}
			}
		}
		for _, tc := range []struct{ tok, id string }{{tok, info.ID}, {site, siteInfo.ID}} {
			sum := token.Sum(tc.tok)
			digests := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token WHERE id = ? AND digest = ?", tc.id, hex.EncodeToString(sum[:]))
			if digests != 1 {
				t.Errorf("gs_auth_token has %d rows with id %s and the SHA-256 digest of its token, expected 1", digests, tc.id)
			}
		}
		if n := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token"); n != 2 {
			t.Errorf("gs_auth_token has %d rows, expected 2", n)
		}
	})
}

// TestCreateTokenNotInSQLiteFile searches the bytes of the SQLite files,
// free pages and the write-ahead log included, for the secret.
func TestCreateTokenNotInSQLiteFile(t *testing.T) {
	dsn := testdb.SQLite(t)
	st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
	tok, info := lifecycleCreate(t, st, "mail-gateway", "", 0)
	lifecycleAccepted(t, st, "", tok, info.ID)
	_, secret := lifecycleParts(tok)

	files, err := filepath.Glob(strings.TrimPrefix(dsn, "sqlite:") + "*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no SQLite files found for %s: %v", dsn, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("reading %s failed: %v", f, err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the secret of token %s", filepath.Base(f), info.ID)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close failed: %v", err)
	}
}

func TestCreateTokenInvalidName(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		tests := []struct {
			name   string
			token  string
			siteID string
		}{
			{"empty", "", ""},
			{"leading hyphen", "-gateway", ""},
			{"leading dot", ".gateway", ""},
			{"leading underscore", "_gateway", ""},
			{"space", "mail gateway", ""},
			{"slash", "mail/gateway", ""},
			{"quote", `mail"gateway`, ""},
			{"newline", "gateway\n", ""},
			{"non-ASCII", "passerelle-é", ""},
			{"65 characters", strings.Repeat("a", 65), ""},
			{"reserved legacy", "legacy", ""},
			{"site with space", "gateway", "site a"},
			{"site with tab", "gateway", "site\ta"},
			{"site non-ASCII", "gateway", "sité"},
			{"site too long", "gateway", strings.Repeat("s", 129)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, info, err := st.CreateToken(lifecycleContext(t), tt.token, tt.siteID, 0)

				if !errors.Is(err, store.ErrInvalidName) {
					t.Errorf("CreateToken(%q, site %q) error = %v, expected ErrInvalidName", tt.token, tt.siteID, err)
				}
				if tok != "" || info.ID != "" {
					t.Errorf("CreateToken(%q, site %q) returned token id %q with its error", tt.token, tt.siteID, info.ID)
				}
			})
		}
		raw := lifecycleRaw(t, dsn)
		if n := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token"); n != 0 {
			t.Errorf("gs_auth_token has %d rows after invalid names, expected 0", n)
		}
	})
}

func TestCreateTokenValidName(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		tests := []struct {
			name   string
			token  string
			siteID string
		}{
			{"one letter", "a", ""},
			{"one digit", "7", ""},
			{"hyphen dot underscore", "Mail.gate_way-2", ""},
			{"64 characters", strings.Repeat("a", 64), ""},
			{"legacy in a longer name", "legacy-client", ""},
			{"site", "gateway", "site-a"},
			{"site of 128 characters", "gateway", strings.Repeat("s", 128)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, info := lifecycleCreate(t, st, tt.token, tt.siteID, 0)

				if info.Name != tt.token {
					t.Errorf("CreateToken(%q) name = %q", tt.token, info.Name)
				}
				if info.SiteID != tt.siteID {
					t.Errorf("CreateToken(%q) site = %q, expected %q", tt.token, info.SiteID, tt.siteID)
				}
				lifecycleAccepted(t, st, tt.siteID, tok, info.ID)
			})
		}
	})
}

func TestCreateTokenNegativeExpiry(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))

		tok, _, err := st.CreateToken(lifecycleContext(t), "gateway", "", -time.Second)

		if err == nil {
			t.Fatalf("CreateToken(expires -1s) succeeded, expected an error")
		}
		if tok != "" {
			t.Errorf("CreateToken(expires -1s) returned a token with its error")
		}
		if !strings.Contains(err.Error(), "-1s") {
			t.Errorf("CreateToken(expires -1s) error %q does not name the value", err)
		}
	})
}

func TestCreateTokenFields(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)

		tok, info := lifecycleCreate(t, st, "mail-gateway", "site-a", 90*24*time.Hour)

		id, err := token.ParseID(tok)
		if err != nil {
			t.Fatalf("ParseID(created token) failed: %v", err)
		}
		if info.ID != id {
			t.Errorf("CreateToken id = %q, expected the id in the token, %q", info.ID, id)
		}
		lifecycleSameTime(t, "Created", info.Created, lifecycleStart)
		lifecycleSameTime(t, "Expires", info.Expires, lifecycleStart.Add(90*24*time.Hour))
		if !info.Revoked.IsZero() || !info.LastUsed.IsZero() || info.ReplacedBy != "" {
			t.Errorf("new token = %+v, expected no revocation, last use or replacement", info)
		}
		stored := lifecycleFind(t, st, info.ID)
		lifecycleSameTime(t, "stored Created", stored.Created, info.Created)
		lifecycleSameTime(t, "stored Expires", stored.Expires, info.Expires)
		if got := stored.State(clock.Now()); got != store.StateActive {
			t.Errorf("State = %q, expected %q", got, store.StateActive)
		}
		_, never := lifecycleCreate(t, st, "forever", "site-a", 0)
		if !lifecycleFind(t, st, never.ID).Expires.IsZero() {
			t.Errorf("token created with expiry 0 has an expiry, expected never")
		}
	})
}

func TestCreateTokenDuplicateName(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		first, info := lifecycleCreate(t, st, "gateway", "site-a", time.Hour)

		tok, _, err := st.CreateToken(ctx, "gateway", "site-a", 0)
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("second CreateToken(gateway, site-a) error = %v, expected ErrExists", err)
		}
		if tok != "" {
			t.Errorf("second CreateToken returned a token with its error")
		}
		lifecycleAccepted(t, st, "site-a", first, info.ID)

		clock.Advance(2 * time.Hour)
		if _, _, err := st.CreateToken(ctx, "gateway", "site-a", 0); !errors.Is(err, store.ErrExists) {
			t.Errorf("CreateToken over an expired current token error = %v, expected ErrExists", err)
		}

		lifecycleCreate(t, st, "gateway", "site-b", 0)
		lifecycleCreate(t, st, "gateway", "", 0)

		if _, err := st.RevokeToken(ctx, "gateway", "site-a"); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		again, againInfo := lifecycleCreate(t, st, "gateway", "site-a", 0)
		lifecycleAccepted(t, st, "site-a", again, againInfo.ID)
	})
}

func TestCreateTokenConcurrentSameName(t *testing.T) {
	const callers = 8
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		ctx := lifecycleContext(t)

		var wg sync.WaitGroup
		errs := make([]error, callers)
		toks := make([]string, callers)
		start := make(chan struct{})
		for i := range callers {
			wg.Go(func() {
				<-start
				toks[i], _, errs[i] = st.CreateToken(ctx, "gateway", "site-a", 0)
			})
		}
		close(start)
		wg.Wait()

		wins := 0
		winner := ""
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
				winner = toks[i]
			case !errors.Is(err, store.ErrExists):
				t.Errorf("CreateToken #%d error = %v, expected nil or ErrExists", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent CreateToken calls succeeded, expected exactly 1", wins, callers)
		}
		raw := lifecycleRaw(t, dsn)
		if n := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token WHERE name = 'gateway'"); n != 1 {
			t.Errorf("gs_auth_token has %d rows named gateway, expected 1", n)
		}
		id, _ := lifecycleParts(winner)
		lifecycleAccepted(t, st, "site-a", winner, id)
	})
}

func TestVerifyNewTokenReasons(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		tok, info := lifecycleCreate(t, st, "gateway", "site-a", 0)
		stranger, _, err := token.New()
		if err != nil {
			t.Fatal(err)
		}

		t.Run("valid", func(t *testing.T) {
			entry := lifecycleAccepted(t, st, "site-a", tok, info.ID)

			if entry.Name != "gateway" {
				t.Errorf("entry Name = %q, expected gateway", entry.Name)
			}
			if entry.SiteID != "site-a" {
				t.Errorf("entry SiteID = %q, expected site-a", entry.SiteID)
			}
			if entry.Digest != token.Sum(tok) {
				t.Errorf("entry Digest is not the digest of the token")
			}
		})
		t.Run("unknown id", func(t *testing.T) {
			me := lifecycleRejected(t, st, "site-a", stranger, token.ReasonUnknown)

			lifecycleAnonymous(t, me)
		})
		t.Run("wrong secret", func(t *testing.T) {
			me := lifecycleRejected(t, st, "site-a", lifecycleWrongSecret(t, tok), token.ReasonUnknown)

			lifecycleAnonymous(t, me)
		})
		t.Run("bad checksum", func(t *testing.T) {
			me := lifecycleRejected(t, st, "site-a", lifecycleBadChecksum(tok), token.ReasonMalformed)

			lifecycleAnonymous(t, me)
		})
		t.Run("truncated", func(t *testing.T) {
			lifecycleRejected(t, st, "site-a", tok[:len(tok)-1], token.ReasonMalformed)
		})
		t.Run("empty", func(t *testing.T) {
			lifecycleRejected(t, st, "site-a", "", token.ReasonMissing)
		})
	})
}

// TestVerifyWrongSecretHidesState checks that a token with a known id but a
// wrong secret is unknown, whatever the state of the token with that id:
// only the holder of the secret may learn that a token is revoked, expired
// or of another site.
func TestVerifyWrongSecretHidesState(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		revoked, revokedInfo := lifecycleCreate(t, st, "revoked", "", 0)
		if _, err := st.RevokeToken(ctx, revokedInfo.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		expired, _ := lifecycleCreate(t, st, "expired", "", time.Minute)
		other, _ := lifecycleCreate(t, st, "other", "site-b", 0)
		clock.Advance(time.Hour)

		tests := []struct {
			name string
			tok  string
		}{
			{"revoked", revoked},
			{"expired", expired},
			{"other site", other},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				me := lifecycleRejected(t, st, "site-a", lifecycleWrongSecret(t, tt.tok), token.ReasonUnknown)

				lifecycleAnonymous(t, me)
			})
		}
	})
}

// TestVerifyMalformedWithoutLookup checks that a token whose checksum
// fails is rejected before any database work: the store is closed, so a
// lookup would fail with a database error instead of a mismatch.
func TestVerifyMalformedWithoutLookup(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		tok, _ := lifecycleCreate(t, st, "gateway", "", 0)
		if err := st.Close(); err != nil {
			t.Fatalf("Close failed: %v", err)
		}

		for _, bad := range []string{lifecycleBadChecksum(tok), tok[:len(tok)-1], tok + "0", "gst_"} {
			lifecycleRejected(t, st, "", bad, token.ReasonMalformed)
		}

		_, err := st.Verify(lifecycleContext(t), "", tok)
		var me *token.MismatchError
		if err == nil || errors.As(err, &me) {
			t.Errorf("Verify(well-formed token) on a closed store = %v, expected a database error; the check above proves nothing", err)
		}
	})
}

func TestVerifyExpiryBoundary(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		tok, info := lifecycleCreate(t, st, "gateway", "", time.Hour)
		end := lifecycleStart.Add(time.Hour)
		lifecycleSameTime(t, "Expires", info.Expires, end)

		clock.Set(end.Add(-time.Nanosecond))
		lifecycleAccepted(t, st, "", tok, info.ID)
		if got := lifecycleFind(t, st, info.ID).State(clock.Now()); got != store.StateActive {
			t.Errorf("State one nanosecond before expiry = %q, expected %q", got, store.StateActive)
		}

		clock.Set(end)
		me := lifecycleRejected(t, st, "", tok, token.ReasonExpired)
		lifecycleNamed(t, me, info.ID, "gateway")
		if got := lifecycleFind(t, st, info.ID).State(clock.Now()); got != store.StateExpired {
			t.Errorf("State at expiry = %q, expected %q", got, store.StateExpired)
		}
	})
}

// TestVerifyExpiryBoundaryUnalignedClock checks the boundary with a clock
// that has nanoseconds, as time.Now has: the token must stay valid until
// the expiry that CreateToken reported.
func TestVerifyExpiryBoundaryUnalignedClock(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		start := lifecycleStart.Add(123456789 * time.Nanosecond)
		clock := newLifecycleClock(start)
		st := lifecycleOpen(t, dsn, clock)
		tok, info := lifecycleCreate(t, st, "gateway", "", time.Hour)

		lifecycleSameTime(t, "stored Expires", lifecycleFind(t, st, info.ID).Expires, info.Expires)
		lifecycleSameTime(t, "stored Created", lifecycleFind(t, st, info.ID).Created, info.Created)
		clock.Set(info.Expires.Add(-time.Nanosecond))
		lifecycleAccepted(t, st, "", tok, info.ID)
	})
}

func TestVerifyPerSite(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		siteA, siteAInfo := lifecycleCreate(t, st, "gateway", "site-a", 0)
		wide, wideInfo := lifecycleCreate(t, st, "gateway", "", 0)

		t.Run("own site", func(t *testing.T) {
			lifecycleAccepted(t, st, "site-a", siteA, siteAInfo.ID)
		})
		t.Run("other site", func(t *testing.T) {
			me := lifecycleRejected(t, st, "site-b", siteA, token.ReasonWrongSite)

			lifecycleNamed(t, me, siteAInfo.ID, "gateway")
		})
		t.Run("install-wide site", func(t *testing.T) {
			me := lifecycleRejected(t, st, "", siteA, token.ReasonWrongSite)

			lifecycleNamed(t, me, siteAInfo.ID, "gateway")
		})
		for _, site := range []string{"", "site-a", "site-b"} {
			t.Run("install-wide token on "+strconv.Quote(site), func(t *testing.T) {
				entry := lifecycleAccepted(t, st, site, wide, wideInfo.ID)

				if entry.SiteID != "" {
					t.Errorf("entry SiteID = %q, expected the install-wide site", entry.SiteID)
				}
			})
		}
	})
}

func TestVerifyLegacyBesideNamed(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		ctx := lifecycleContext(t)
		legacy, err := token.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
			t.Fatalf("ReplaceLegacyToken failed: %v", err)
		}
		named, namedInfo := lifecycleCreate(t, st, "gateway", "", 0)
		lifecycleRotate(t, st, "gateway", "", time.Hour, 0)

		for _, site := range []string{"", "site-a"} {
			lifecycleAccepted(t, st, site, legacy, store.LegacyTokenID)
			lifecycleAccepted(t, st, site, named, namedInfo.ID)
		}
		lifecycleRejected(t, st, "", legacy[:len(legacy)-1], token.ReasonUnknown)

		retired, err := st.RetireLegacyToken(ctx)
		if err != nil || !retired {
			t.Fatalf("RetireLegacyToken = %v, %v; expected true, nil", retired, err)
		}
		lifecycleRejected(t, st, "", legacy, token.ReasonNoneStored)
		lifecycleAccepted(t, st, "", named, namedInfo.ID)
	})
}

func TestRotateTokenGrace(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		old, oldInfo := lifecycleCreate(t, st, "gateway", "", 0)
		clock.Advance(10 * time.Minute)
		rotated := clock.Now()

		tok, info, before := lifecycleRotate(t, st, "gateway", "", time.Hour, 0)

		end := rotated.Add(time.Hour)
		if before.ID != oldInfo.ID {
			t.Errorf("RotateToken old id = %q, expected %q", before.ID, oldInfo.ID)
		}
		if before.ReplacedBy != info.ID {
			t.Errorf("RotateToken old ReplacedBy = %q, expected the new id %q", before.ReplacedBy, info.ID)
		}
		lifecycleSameTime(t, "old Expires", before.Expires, end)
		if info.ID == oldInfo.ID || tok == old {
			t.Fatalf("RotateToken returned the old token")
		}
		if info.Name != "gateway" || info.SiteID != "" {
			t.Errorf("new token name %q site %q, expected gateway on the install-wide site", info.Name, info.SiteID)
		}
		lifecycleSameTime(t, "new Created", info.Created, rotated)
		stored := lifecycleFind(t, st, oldInfo.ID)
		lifecycleSameTime(t, "stored old Expires", stored.Expires, end)
		if stored.State(clock.Now()) != store.StateGrace {
			t.Errorf("old State = %q, expected %q", stored.State(clock.Now()), store.StateGrace)
		}

		lifecycleAccepted(t, st, "", old, oldInfo.ID)
		lifecycleAccepted(t, st, "", tok, info.ID)

		clock.Set(end.Add(-time.Nanosecond))
		lifecycleAccepted(t, st, "", old, oldInfo.ID)

		clock.Set(end)
		me := lifecycleRejected(t, st, "", old, token.ReasonExpired)
		lifecycleNamed(t, me, oldInfo.ID, "gateway")
		lifecycleAccepted(t, st, "", tok, info.ID)
		if got := lifecycleFind(t, st, oldInfo.ID).State(clock.Now()); got != store.StateExpired {
			t.Errorf("old State after grace = %q, expected %q", got, store.StateExpired)
		}
	})
}

func TestRotateTokenGraceZero(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		old, oldInfo := lifecycleCreate(t, st, "gateway", "site-a", 0)
		clock.Advance(time.Minute)

		tok, info, before := lifecycleRotate(t, st, "gateway", "site-a", 0, 0)

		lifecycleSameTime(t, "old Expires", before.Expires, clock.Now())
		me := lifecycleRejected(t, st, "site-a", old, token.ReasonExpired)
		lifecycleNamed(t, me, oldInfo.ID, "gateway")
		lifecycleAccepted(t, st, "site-a", tok, info.ID)
	})
}

func TestRotateTokenGraceCappedByExpiry(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		old, oldInfo := lifecycleCreate(t, st, "gateway", "", 30*time.Minute)
		clock.Advance(10 * time.Minute)

		_, _, before := lifecycleRotate(t, st, "gateway", "", time.Hour, 0)

		own := lifecycleStart.Add(30 * time.Minute)
		lifecycleSameTime(t, "old Expires", before.Expires, own)
		lifecycleSameTime(t, "stored old Expires", lifecycleFind(t, st, oldInfo.ID).Expires, own)
		clock.Set(own.Add(-time.Nanosecond))
		lifecycleAccepted(t, st, "", old, oldInfo.ID)
		clock.Set(own)
		lifecycleRejected(t, st, "", old, token.ReasonExpired)
	})
}

func TestRotateTokenLifetime(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name      string
		lifetime  time.Duration // of the first token; 0 is never
		expiresIn time.Duration // passed to RotateToken
		want      time.Duration // lifetime of the new token; 0 is never
	}{
		{"keeps lifetime", day, 0, day},
		{"sets lifetime", day, 2 * time.Hour, 2 * time.Hour},
		{"keeps never", 0, 0, 0},
		{"sets lifetime on never", 0, time.Hour, time.Hour},
	}
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := fmt.Sprintf("client-%d", i)
				clock.Set(lifecycleStart)
				lifecycleCreate(t, st, name, "", tt.lifetime)
				clock.Advance(5 * time.Hour)
				if tt.lifetime > 0 && tt.lifetime <= 5*time.Hour {
					t.Fatalf("the first token must outlive the rotation")
				}

				tok, info, _ := lifecycleRotate(t, st, name, "", 0, tt.expiresIn)

				var want time.Time
				if tt.want > 0 {
					want = clock.Now().Add(tt.want)
				}
				lifecycleSameTime(t, "new Expires", info.Expires, want)
				lifecycleSameTime(t, "stored new Expires", lifecycleFind(t, st, info.ID).Expires, want)
				lifecycleAccepted(t, st, "", tok, info.ID)
			})
		}
	})
}

func TestRotateTokenTwice(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		first, firstInfo := lifecycleCreate(t, st, "gateway", "", 0)
		second, secondInfo, _ := lifecycleRotate(t, st, "gateway", "", time.Hour, 0)
		clock.Advance(time.Minute)

		third, thirdInfo, before := lifecycleRotate(t, st, "gateway", "", 0, 0)

		if before.ID != secondInfo.ID {
			t.Errorf("second rotation replaced %q, expected the current token %q", before.ID, secondInfo.ID)
		}
		lifecycleAccepted(t, st, "", first, firstInfo.ID)
		lifecycleRejected(t, st, "", second, token.ReasonExpired)
		lifecycleAccepted(t, st, "", third, thirdInfo.ID)
	})
}

func TestRotateTokenErrors(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		ctx := lifecycleContext(t)
		lifecycleCreate(t, st, "gateway", "site-a", 0)
		_, revokedInfo := lifecycleCreate(t, st, "revoked", "", 0)
		if _, err := st.RevokeToken(ctx, revokedInfo.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		tests := []struct {
			name    string
			token   string
			siteID  string
			grace   time.Duration
			wantErr error // nil for an error of no particular kind
		}{
			{"unknown name", "nobody", "", time.Hour, store.ErrNotFound},
			{"name of another site", "gateway", "", time.Hour, store.ErrNotFound},
			{"revoked", "revoked", "", time.Hour, store.ErrNotFound},
			{"invalid name", "bad name", "site-a", time.Hour, store.ErrInvalidName},
			{"negative grace", "gateway", "site-a", -time.Second, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, _, _, err := st.RotateToken(ctx, tt.token, tt.siteID, tt.grace, 0)

				if err == nil {
					t.Fatalf("RotateToken(%q, site %q) succeeded, expected an error", tt.token, tt.siteID)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("RotateToken(%q, site %q) error = %v, expected it to match %v", tt.token, tt.siteID, err, tt.wantErr)
				}
				if tok != "" {
					t.Errorf("RotateToken returned a token with its error")
				}
			})
		}
		raw := lifecycleRaw(t, dsn)
		if n := raw.count(t, "SELECT COUNT(*) FROM gs_auth_token"); n != 2 {
			t.Errorf("gs_auth_token has %d rows after failed rotations, expected 2", n)
		}
	})
}

func TestRevokeTokenByID(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		tok, info := lifecycleCreate(t, st, "gateway", "site-a", 0)
		other, otherInfo := lifecycleCreate(t, st, "other", "site-a", 0)
		clock.Advance(time.Minute)

		revoked, err := st.RevokeToken(ctx, info.ID, "some-other-site")

		if err != nil {
			t.Fatalf("RevokeToken(id) failed: %v", err)
		}
		if len(revoked) != 1 || revoked[0].ID != info.ID {
			t.Fatalf("RevokeToken(id) = %+v, expected token %s alone", revoked, info.ID)
		}
		lifecycleSameTime(t, "returned Revoked", revoked[0].Revoked, clock.Now())
		lifecycleSameTime(t, "stored Revoked", lifecycleFind(t, st, info.ID).Revoked, clock.Now())
		me := lifecycleRejected(t, st, "site-a", tok, token.ReasonRevoked)
		lifecycleNamed(t, me, info.ID, "gateway")
		lifecycleAccepted(t, st, "site-a", other, otherInfo.ID)
		if got := lifecycleFind(t, st, info.ID).State(clock.Now()); got != store.StateRevoked {
			t.Errorf("State = %q, expected %q", got, store.StateRevoked)
		}

		if _, err := st.RevokeToken(ctx, info.ID, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeToken(revoked id) error = %v, expected ErrNotFound", err)
		}
	})
}

func TestRevokeTokenByName(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		old, oldInfo := lifecycleCreate(t, st, "gateway", "site-a", 0)
		tok, info, _ := lifecycleRotate(t, st, "gateway", "site-a", time.Hour, 0)
		elsewhere, elsewhereInfo := lifecycleCreate(t, st, "gateway", "site-b", 0)
		clock.Advance(time.Minute)

		revoked, err := st.RevokeToken(ctx, "gateway", "site-a")

		if err != nil {
			t.Fatalf("RevokeToken(name) failed: %v", err)
		}
		ids := map[string]bool{}
		for _, r := range revoked {
			ids[r.ID] = true
			lifecycleSameTime(t, "Revoked of "+r.ID, r.Revoked, clock.Now())
		}
		if len(revoked) != 2 || !ids[oldInfo.ID] || !ids[info.ID] {
			t.Errorf("RevokeToken(name) revoked %v, expected the current token %s and the one in grace %s", ids, info.ID, oldInfo.ID)
		}
		for _, tc := range []struct{ tok, id string }{{old, oldInfo.ID}, {tok, info.ID}} {
			me := lifecycleRejected(t, st, "site-a", tc.tok, token.ReasonRevoked)
			lifecycleNamed(t, me, tc.id, "gateway")
		}
		lifecycleAccepted(t, st, "site-b", elsewhere, elsewhereInfo.ID)

		if _, err := st.RevokeToken(ctx, "gateway", "site-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second RevokeToken(name) error = %v, expected ErrNotFound", err)
		}
	})
}

func TestRevokeTokenNotFound(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		st := lifecycleOpen(t, dsn, newLifecycleClock(lifecycleStart))
		lifecycleCreate(t, st, "gateway", "site-a", 0)
		tests := []struct {
			name   string
			ref    string
			siteID string
		}{
			{"unknown name", "nobody", "site-a"},
			{"name on another site", "gateway", "site-b"},
			{"name on the install-wide site", "gateway", ""},
			{"unknown id", "AAAAAAAAAAAA", ""},
			{"empty", "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				revoked, err := st.RevokeToken(lifecycleContext(t), tt.ref, tt.siteID)

				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("RevokeToken(%q, site %q) error = %v, expected ErrNotFound", tt.ref, tt.siteID, err)
				}
				if len(revoked) != 0 {
					t.Errorf("RevokeToken(%q, site %q) revoked %d tokens with its error", tt.ref, tt.siteID, len(revoked))
				}
			})
		}
	})
}

func TestListTokensOrderAndSites(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		_, b1 := lifecycleCreate(t, st, "beta", "site-a", 0)
		clock.Advance(time.Second)
		_, a1 := lifecycleCreate(t, st, "alpha", "site-a", 0)
		clock.Advance(time.Second)
		_, w1 := lifecycleCreate(t, st, "wide", "", 0)
		clock.Advance(time.Second)
		_, b2, _ := lifecycleRotate(t, st, "beta", "site-a", time.Hour, 0)
		clock.Advance(time.Second)
		_, c1 := lifecycleCreate(t, st, "alpha", "site-c", 0)

		tests := []struct {
			name     string
			siteID   string
			allSites bool
			want     []string
		}{
			{"site-a", "site-a", false, []string{a1.ID, b1.ID, b2.ID}},
			{"install-wide", "", false, []string{w1.ID}},
			{"unknown site", "site-z", false, nil},
			{"all sites", "", true, []string{w1.ID, a1.ID, b1.ID, b2.ID, c1.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tokens, err := st.ListTokens(ctx, tt.siteID, tt.allSites)
				if err != nil {
					t.Fatalf("ListTokens failed: %v", err)
				}

				var got []string
				for _, tk := range tokens {
					got = append(got, tk.ID)
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("ListTokens(%q, all %v) ids = %v, expected %v", tt.siteID, tt.allSites, got, tt.want)
				}
			})
		}
	})
}

func TestListTokensStates(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		_, active := lifecycleCreate(t, st, "active", "", 0)
		lifecycleCreate(t, st, "rotated", "", 0)
		_, current, old := lifecycleRotate(t, st, "rotated", "", 2*time.Hour, 0)
		_, expired := lifecycleCreate(t, st, "expired", "", time.Hour)
		_, revoked := lifecycleCreate(t, st, "revoked", "", 0)
		if _, err := st.RevokeToken(ctx, revoked.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		clock.Advance(time.Hour)

		want := map[string]string{
			active.ID:  store.StateActive,
			current.ID: store.StateActive,
			old.ID:     store.StateGrace,
			expired.ID: store.StateExpired,
			revoked.ID: store.StateRevoked,
		}
		tokens, err := st.ListTokens(ctx, "", true)
		if err != nil {
			t.Fatalf("ListTokens failed: %v", err)
		}
		if len(tokens) != len(want) {
			t.Errorf("ListTokens returned %d tokens, expected %d", len(tokens), len(want))
		}
		for _, tk := range tokens {
			if got := tk.State(clock.Now()); got != want[tk.ID] {
				t.Errorf("token %q (%s) State = %q, expected %q", tk.Name, tk.ID, got, want[tk.ID])
			}
			if got, wantValid := tk.Valid(clock.Now()), want[tk.ID] == store.StateActive || want[tk.ID] == store.StateGrace; got != wantValid {
				t.Errorf("token %q (%s) Valid = %v, expected %v", tk.Name, tk.ID, got, wantValid)
			}
		}
		if got := lifecycleFind(t, st, old.ID).ReplacedBy; got != current.ID {
			t.Errorf("rotated token ReplacedBy = %q, expected %q", got, current.ID)
		}
	})
}

func TestLegacyTokenStatusAndRetire(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)

		exists, last, err := st.LegacyTokenStatus(ctx)
		if err != nil {
			t.Fatalf("LegacyTokenStatus failed: %v", err)
		}
		if exists || !last.IsZero() {
			t.Errorf("LegacyTokenStatus on an empty store = %v, %s; expected false, zero", exists, last)
		}
		retired, err := st.RetireLegacyToken(ctx)
		if err != nil || retired {
			t.Errorf("RetireLegacyToken on an empty store = %v, %v; expected false, nil", retired, err)
		}

		legacy, err := token.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
			t.Fatalf("ReplaceLegacyToken failed: %v", err)
		}
		exists, last, err = st.LegacyTokenStatus(ctx)
		if err != nil {
			t.Fatalf("LegacyTokenStatus failed: %v", err)
		}
		if !exists || !last.IsZero() {
			t.Errorf("LegacyTokenStatus before any use = %v, %s; expected true, zero", exists, last)
		}

		retired, err = st.RetireLegacyToken(ctx)
		if err != nil || !retired {
			t.Fatalf("RetireLegacyToken = %v, %v; expected true, nil", retired, err)
		}
		exists, _, err = st.LegacyTokenStatus(ctx)
		if err != nil || exists {
			t.Errorf("LegacyTokenStatus after retiring = %v, %v; expected false, nil", exists, err)
		}
		raw := lifecycleRaw(t, dsn)
		if n := raw.count(t, "SELECT COUNT(*) FROM option WHERE component_id = ? AND option_id = ?", store.LegacyComponent, store.LegacyOption); n != 0 {
			t.Errorf("option has %d token rows after retiring, expected 0", n)
		}
		retired, err = st.RetireLegacyToken(ctx)
		if err != nil || retired {
			t.Errorf("second RetireLegacyToken = %v, %v; expected false, nil", retired, err)
		}
	})
}

func TestHasUsableTokenCases(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, st *store.Store, clock *lifecycleClock)
		want  bool
	}{
		{"empty", func(*testing.T, *store.Store, *lifecycleClock) {}, false},
		{"legacy", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			if err := st.ReplaceLegacyToken(lifecycleContext(t), "k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"own site", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-a", 0)
		}, true},
		{"install-wide", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "", 0)
		}, true},
		{"other site only", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-b", 0)
		}, false},
		{"expired", func(t *testing.T, st *store.Store, clock *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-a", time.Hour)
			clock.Advance(time.Hour)
		}, false},
		{"revoked", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-a", 0)
			if _, err := st.RevokeToken(lifecycleContext(t), "gateway", "site-a"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"only one in grace", func(t *testing.T, st *store.Store, _ *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-a", 0)
			_, current, _ := lifecycleRotate(t, st, "gateway", "site-a", time.Hour, 0)
			if _, err := st.RevokeToken(lifecycleContext(t), current.ID, ""); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"grace ended", func(t *testing.T, st *store.Store, clock *lifecycleClock) {
			lifecycleCreate(t, st, "gateway", "site-a", 0)
			_, current, _ := lifecycleRotate(t, st, "gateway", "site-a", time.Hour, 0)
			if _, err := st.RevokeToken(lifecycleContext(t), current.ID, ""); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
		}, false},
	}
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					clock := newLifecycleClock(lifecycleStart)
					st := lifecycleOpen(t, b.New(t), clock)
					tt.setup(t, st, clock)

					got, err := st.HasUsableToken(lifecycleContext(t), "site-a", false)

					if err != nil {
						t.Fatalf("HasUsableToken failed: %v", err)
					}
					if got != tt.want {
						t.Errorf("HasUsableToken(site-a) = %v, expected %v", got, tt.want)
					}
				})
			}
		})
	}
}

// lifecycleOutcome describes the result of a check for comparison: the
// entry's id and site, or the mismatch reason with the token it names, or
// the text of any other error.
func lifecycleOutcome(entry token.Entry, err error) string {
	var me *token.MismatchError
	switch {
	case err == nil:
		return fmt.Sprintf("accepted %s (%q, site %q)", entry.ID, entry.Name, entry.SiteID)
	case errors.As(err, &me):
		return fmt.Sprintf("%v, token %q (%q)", me.Reason, me.TokenID, me.TokenName)
	}
	return "error: " + err.Error()
}

// TestCacheVerifyMatchesStore checks that the in-memory copy that serve
// uses gives the same result as the database for every kind of token, on
// every site, on both sides of each expiry.
func TestCacheVerifyMatchesStore(t *testing.T) {
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		legacy := "k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i"
		if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
			t.Fatalf("ReplaceLegacyToken failed: %v", err)
		}
		valid, _ := lifecycleCreate(t, st, "valid", "site-a", 0)
		expiring, _ := lifecycleCreate(t, st, "expiring", "", time.Hour)
		revoked, revokedInfo := lifecycleCreate(t, st, "revoked", "", 0)
		if _, err := st.RevokeToken(ctx, revokedInfo.ID, ""); err != nil {
			t.Fatalf("RevokeToken failed: %v", err)
		}
		other, _ := lifecycleCreate(t, st, "other", "site-b", 0)
		wide, _ := lifecycleCreate(t, st, "wide", "", 0)
		rotated, _ := lifecycleCreate(t, st, "rotated", "site-a", 0)
		current, _, _ := lifecycleRotate(t, st, "rotated", "site-a", 30*time.Minute, 0)
		stranger, _, err := token.New()
		if err != nil {
			t.Fatal(err)
		}
		cache, err := st.NewCache(ctx)
		if err != nil {
			t.Fatalf("NewCache failed: %v", err)
		}
		t.Cleanup(cache.Close)

		tokens := []struct{ name, tok string }{
			{"valid", valid}, {"expiring", expiring}, {"revoked", revoked}, {"other site", other},
			{"install-wide", wide}, {"in grace", rotated}, {"current", current}, {"legacy", legacy},
			{"unknown", stranger}, {"wrong secret", lifecycleWrongSecret(t, valid)},
			{"wrong secret of revoked", lifecycleWrongSecret(t, revoked)},
			{"bad checksum", lifecycleBadChecksum(valid)}, {"legacy near miss", legacy[:31]}, {"empty", ""},
		}
		for _, at := range []time.Duration{0, 30*time.Minute - time.Nanosecond, 30 * time.Minute, time.Hour - time.Nanosecond, time.Hour} {
			clock.Set(lifecycleStart.Add(at))
			for _, tk := range tokens {
				for _, site := range []string{"", "site-a", "site-b"} {
					want := lifecycleOutcome(st.Verify(ctx, site, tk.tok))
					got := lifecycleOutcome(cache.Verify(ctx, site, tk.tok))
					if got != want {
						t.Errorf("at start+%s, %s token on site %q: cache %s, store %s", at, tk.name, site, got, want)
					}
				}
			}
		}
	})
}

// TestCacheSeesOwnChangesAtOnce checks that a cache over a store rejects a
// token as soon as a revocation, rotation or retirement through that store
// returns, as its documentation promises, and not only after the next
// reload. Each change is repeated so that a lucky reload cannot hide a gap.
func TestCacheSeesOwnChangesAtOnce(t *testing.T) {
	const rounds = 10
	lifecycleBackends(t, func(t *testing.T, dsn string) {
		clock := newLifecycleClock(lifecycleStart)
		st := lifecycleOpen(t, dsn, clock)
		ctx := lifecycleContext(t)
		cache, err := st.NewCache(ctx)
		if err != nil {
			t.Fatalf("NewCache failed: %v", err)
		}
		t.Cleanup(cache.Close)
		check := func(tok string) string { return lifecycleOutcome(cache.Verify(ctx, "", tok)) }

		stale := map[string]int{}
		for i := range rounds {
			name := fmt.Sprintf("client-%d", i)
			tok, info := lifecycleCreate(t, st, name, "", 0)
			if got := check(tok); !strings.HasPrefix(got, "accepted") {
				t.Fatalf("new token %s: cache %s, expected it accepted", info.ID, got)
			}
			if _, err := st.RevokeToken(ctx, info.ID, ""); err != nil {
				t.Fatalf("RevokeToken failed: %v", err)
			}
			if got := check(tok); !strings.HasPrefix(got, token.ReasonRevoked.String()) {
				stale["revoke"]++
			}

			rotated, _ := lifecycleCreate(t, st, name+"-rotated", "", 0)
			check(rotated)
			lifecycleRotate(t, st, name+"-rotated", "", 0, 0)
			if got := check(rotated); !strings.HasPrefix(got, token.ReasonExpired.String()) {
				stale["rotate with grace 0"]++
			}

			legacy, err := token.Generate()
			if err != nil {
				t.Fatal(err)
			}
			if err := st.ReplaceLegacyToken(ctx, legacy); err != nil {
				t.Fatalf("ReplaceLegacyToken failed: %v", err)
			}
			check(legacy)
			if _, err := st.RetireLegacyToken(ctx); err != nil {
				t.Fatalf("RetireLegacyToken failed: %v", err)
			}
			if got := check(legacy); strings.HasPrefix(got, "accepted") {
				stale["retire legacy"]++
			}
		}
		for change, n := range stale {
			t.Errorf("after %s through the same store, the cache accepted the old token %d of %d times", change, n, rounds)
		}
	})
}
