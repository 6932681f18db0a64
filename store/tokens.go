package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/gs-auth-token/gs-auth-token/token"
)

var (
	// ErrExists is the condition of creating a token whose name is already
	// taken by a current token of the same site.
	ErrExists = errors.New("token already exists")
	// ErrNotFound is the condition of a token name or id that matches no
	// token.
	ErrNotFound = errors.New("token not found")
	// ErrInvalidName is the condition of a token name or site id that is
	// not allowed.
	ErrInvalidName = errors.New("invalid token name")
)

// Token describes a stored token. It never holds the secret or its digest.
type Token struct {
	// ID is the token's public id, part of the token itself.
	ID string
	// Name identifies the client that uses the token, such as "mail-gateway".
	Name string
	// SiteID is the site the token is valid for; "" is every site.
	SiteID string
	// Created is when the token was made.
	Created time.Time
	// Expires is when the token stops working, or zero for never.
	Expires time.Time
	// Revoked is when the token was revoked, or zero.
	Revoked time.Time
	// ReplacedBy is the id of the token that replaced this one in a
	// rotation, or empty.
	ReplacedBy string
	// LastUsed is when the token last authenticated a request, to within
	// [LastUseInterval], or zero for never.
	LastUsed time.Time
}

// Token states, as [Token.State] returns them.
const (
	StateActive  = "active"
	StateGrace   = "rotated"
	StateExpired = "expired"
	StateRevoked = "revoked"
)

// State returns the token's state at now: active, rotated (replaced but
// still valid until Expires), expired or revoked.
func (t Token) State(now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return StateRevoked
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return StateExpired
	case t.ReplacedBy != "":
		return StateGrace
	}
	return StateActive
}

// Valid reports whether the token authenticates requests at now.
func (t Token) Valid(now time.Time) bool {
	s := t.State(now)
	return s == StateActive || s == StateGrace
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateName returns an error matching [ErrInvalidName] unless name is 1
// to 64 letters, digits, dots, underscores or hyphens, starting with a
// letter or digit, and not the reserved name "legacy".
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidName, name)
	}
	if name == LegacyTokenID {
		return fmt.Errorf("%w %q: the name is reserved for GroupServer's plain-text token", ErrInvalidName, name)
	}
	return nil
}

// ValidateSiteID returns an error matching [ErrInvalidName] unless id is
// empty (every site) or up to 128 printable ASCII characters without
// spaces.
func ValidateSiteID(id string) error {
	if len(id) > 128 {
		return fmt.Errorf("%w: site id is %d bytes long, more than the maximum of 128", ErrInvalidName, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("%w: site id %q contains a space or a character outside printable ASCII", ErrInvalidName, id)
		}
	}
	return nil
}

// CreateToken makes a new token named name for site siteID and stores its
// digest. A positive expiresIn sets its expiry; zero means never. It returns
// the token, which is not stored anywhere and cannot be shown again, and
// its description. It returns an error matching [ErrExists] when a current
// token of that name exists on the site.
func (s *Store) CreateToken(ctx context.Context, name, siteID string, expiresIn time.Duration) (string, Token, error) {
	if err := ValidateName(name); err != nil {
		return "", Token{}, err
	}
	if err := ValidateSiteID(siteID); err != nil {
		return "", Token{}, err
	}
	if expiresIn < 0 {
		return "", Token{}, fmt.Errorf("invalid expiry %s: must not be negative", expiresIn)
	}

	tx, err := s.beginWrite(ctx)
	if err != nil {
		return "", Token{}, s.opError("create token in", err)
	}
	defer tx.Rollback()

	if _, err := s.currentToken(ctx, tx, siteID, name); err == nil {
		return "", Token{}, fmt.Errorf("%w: a token named %q is already active on %s; rotate it, or revoke it first", ErrExists, name, siteText(siteID))
	} else if !errors.Is(err, ErrNotFound) {
		return "", Token{}, err
	}
	plain, t, err := s.insertToken(ctx, tx, name, siteID, expiresIn)
	if err != nil {
		return "", Token{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", Token{}, s.opError("create token in", err)
	}
	s.caches.invalidate()
	return plain, t, nil
}

// RotateToken replaces the current token named name on site siteID with a
// new one, in one transaction. The old token stays valid for grace, or
// until its own expiry if that comes first; a grace of zero ends it at
// once. The new token keeps the old one's lifetime, unless expiresIn is
// positive, which sets a new one. It returns the new token and the
// descriptions of both.
func (s *Store) RotateToken(ctx context.Context, name, siteID string, grace, expiresIn time.Duration) (string, Token, Token, error) {
	if err := ValidateName(name); err != nil {
		return "", Token{}, Token{}, err
	}
	if grace < 0 || expiresIn < 0 {
		return "", Token{}, Token{}, fmt.Errorf("invalid grace period %s or expiry %s: must not be negative", grace, expiresIn)
	}

	tx, err := s.beginWrite(ctx)
	if err != nil {
		return "", Token{}, Token{}, s.opError("rotate token in", err)
	}
	defer tx.Rollback()

	old, err := s.currentToken(ctx, tx, siteID, name)
	if err != nil {
		return "", Token{}, Token{}, err
	}
	now := s.stamp()
	if expiresIn == 0 && !old.Expires.IsZero() {
		expiresIn = old.Expires.Sub(old.Created)
	}
	id, err := s.reserveID()
	if err != nil {
		return "", Token{}, Token{}, err
	}
	end := now.Add(grace)
	if !old.Expires.IsZero() && old.Expires.Before(end) {
		end = old.Expires
	}
	// The old row stops being current first, so that the unique index on
	// current names admits the new one.
	if _, err := tx.ExecContext(ctx, s.rebind("UPDATE gs_auth_token SET replaced_by = ?, expires_at = ? WHERE id = ?"),
		id.id, s.timeArg(end), old.ID); err != nil {
		return "", Token{}, Token{}, s.opError("rotate token in", err)
	}
	plain, t, err := s.insertTokenWithID(ctx, tx, id.id, id.plain, name, siteID, expiresIn)
	if err != nil {
		return "", Token{}, Token{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", Token{}, Token{}, s.opError("rotate token in", err)
	}
	s.caches.invalidate()
	old.ReplacedBy, old.Expires = t.ID, end
	return plain, t, old, nil
}

// RevokeToken revokes tokens at once, in one transaction. ref is a token
// id, which revokes that token, or a name, which revokes every unrevoked
// token of that name on site siteID: the current one and any still in a
// rotation's grace period. It returns the revoked tokens, or an error
// matching [ErrNotFound].
func (s *Store) RevokeToken(ctx context.Context, ref, siteID string) ([]Token, error) {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return nil, s.opError("revoke token in", err)
	}
	defer tx.Rollback()

	now := s.stamp()
	targets, err := s.queryTokens(ctx, tx, "WHERE t.id = ? AND t.revoked_at IS NULL", ref)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		targets, err = s.queryTokens(ctx, tx, "WHERE t.site_id = ? AND t.name = ? AND t.revoked_at IS NULL", siteID, ref)
		if err != nil {
			return nil, err
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: no unrevoked token has the id or name %q on %s; run 'gs-auth-token list' to see them, and give --site for a site's token", ErrNotFound, ref, siteText(siteID))
	}
	for i := range targets {
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE gs_auth_token SET revoked_at = ? WHERE id = ?"), s.timeArg(now), targets[i].ID); err != nil {
			return nil, s.opError("revoke token in", err)
		}
		targets[i].Revoked = now
	}
	if err := tx.Commit(); err != nil {
		return nil, s.opError("revoke token in", err)
	}
	s.caches.invalidate()
	return targets, nil
}

// ListTokens returns the tokens of site siteID, or of every site when
// allSites is true, by site, name and creation. It never returns secrets.
func (s *Store) ListTokens(ctx context.Context, siteID string, allSites bool) ([]Token, error) {
	if allSites {
		return s.queryTokens(ctx, s.db, "ORDER BY t.site_id, t.name, t.created_at")
	}
	return s.queryTokens(ctx, s.db, "WHERE t.site_id = ? ORDER BY t.name, t.created_at", siteID)
}

// LegacyTokenStatus reports whether GroupServer's plain-text token exists
// and when it was last used (zero for never, or before this program kept
// count).
func (s *Store) LegacyTokenStatus(ctx context.Context) (bool, time.Time, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM option WHERE component_id = ? AND option_id = ?"),
		LegacyComponent, LegacyOption).Scan(&n); err != nil {
		return false, time.Time{}, s.opError("read tokens from", err)
	}
	var last any
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT last_used_at FROM gs_auth_token_use WHERE token_id = ?"), LegacyTokenID).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, s.opError("read tokens from", err)
	}
	var lastUsed time.Time
	if last != nil {
		if lastUsed, err = parseTime(last); err != nil {
			return false, time.Time{}, s.opError("read tokens from", err)
		}
	}
	return n > 0, lastUsed, nil
}

// RetireLegacyToken deletes GroupServer's plain-text token, so that only
// named tokens authenticate. GroupServer's own Python hooks read that row,
// so retire it only when no client uses it. It reports whether a row was
// deleted.
func (s *Store) RetireLegacyToken(ctx context.Context) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM option WHERE component_id = ? AND option_id = ?"), LegacyComponent, LegacyOption)
	if err != nil {
		return false, s.opError("retire token in", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.opError("retire token in", err)
	}
	s.caches.invalidate()
	return n > 0, nil
}

// verifyNamed checks a token in the new format. The digest comparison runs
// whether or not the id is known, and the token's state is reported only
// when the digest matches, so a guessed id reveals nothing about it.
func (s *Store) verifyNamed(ctx context.Context, siteID, supplied string, siteOnly bool) (token.Entry, error) {
	id, err := token.ParseID(supplied)
	if err != nil {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonMalformed}
	}
	row, err := s.tokenByID(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return token.Entry{}, err
	}
	want := dummyDigest
	if found {
		want = row.digest
	}
	sum := token.Sum(supplied)
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !found {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonUnknown}
	}

	t := row.Token
	now := s.now()
	if err := judge(&t, siteID, now, siteOnly); err != nil {
		return token.Entry{}, err
	}
	s.usage.touch(t.ID, now)
	return token.Entry{Digest: row.digest, ID: t.ID, Name: t.Name, SiteID: t.SiteID}, nil
}

// dummyDigest replaces the digest of an unknown id, so that a lookup
// miss costs the same comparison as a hit.
var dummyDigest = token.Sum("gst_unknown")

type tokenRow struct {
	Token
	digest token.Digest
}

func (s *Store) tokenByID(ctx context.Context, id string) (tokenRow, error) {
	rows, err := s.tokenRows(ctx, "WHERE id = ?", id)
	if err != nil {
		return tokenRow{}, err
	}
	if len(rows) == 0 {
		return tokenRow{}, ErrNotFound
	}
	return rows[0], nil
}

// allTokenRows returns every token, the revoked and expired ones included,
// so that presenting one is reported by its state rather than as unknown.
//
// NOTE: nothing prunes old revoked tokens, so the rows loaded grow with
// every rotation; at thousands of rotations a reload reads thousands of rows.
func (s *Store) allTokenRows(ctx context.Context) ([]tokenRow, error) {
	return s.tokenRows(ctx, "")
}

func (s *Store) tokenRows(ctx context.Context, clause string, args ...any) ([]tokenRow, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, name, site_id, digest, created_at, expires_at, revoked_at, replaced_by
		FROM gs_auth_token `+clause), args...)
	if err != nil {
		return nil, s.opError("read tokens from", err)
	}
	defer rows.Close()

	var out []tokenRow
	for rows.Next() {
		var r tokenRow
		var digestHex string
		var created, expires, revoked any
		var replaced sql.NullString
		if err := rows.Scan(&r.ID, &r.Name, &r.SiteID, &digestHex, &created, &expires, &revoked, &replaced); err != nil {
			return nil, s.opError("read tokens from", err)
		}
		if err := r.setTimes(created, expires, revoked); err != nil {
			return nil, s.opError("read tokens from", err)
		}
		r.ReplacedBy = replaced.String
		b, err := hex.DecodeString(digestHex)
		if err != nil || len(b) != len(r.digest) {
			return nil, s.opError("read tokens from", fmt.Errorf("token %s has a malformed digest", r.ID))
		}
		copy(r.digest[:], b)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.opError("read tokens from", err)
	}
	return out, nil
}

// queryer is the query interface common to *sql.DB and *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// queryTokens returns the tokens that the clause selects, with their last
// use.
func (s *Store) queryTokens(ctx context.Context, q queryer, clause string, args ...any) ([]Token, error) {
	rows, err := q.QueryContext(ctx, s.rebind(`SELECT t.id, t.name, t.site_id, t.created_at, t.expires_at, t.revoked_at, t.replaced_by, u.last_used_at
		FROM gs_auth_token t LEFT JOIN gs_auth_token_use u ON u.token_id = t.id `+clause), args...)
	if err != nil {
		return nil, s.opError("read tokens from", err)
	}
	defer rows.Close()

	var out []Token
	for rows.Next() {
		var t Token
		var created, expires, revoked, lastUsed any
		var replaced sql.NullString
		if err := rows.Scan(&t.ID, &t.Name, &t.SiteID, &created, &expires, &revoked, &replaced, &lastUsed); err != nil {
			return nil, s.opError("read tokens from", err)
		}
		if err := t.setTimes(created, expires, revoked); err != nil {
			return nil, s.opError("read tokens from", err)
		}
		if lastUsed != nil {
			if t.LastUsed, err = parseTime(lastUsed); err != nil {
				return nil, s.opError("read tokens from", err)
			}
		}
		t.ReplacedBy = replaced.String
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.opError("read tokens from", err)
	}
	return out, nil
}

func (t *Token) setTimes(created, expires, revoked any) error {
	var err error
	if t.Created, err = parseTime(created); err != nil {
		return err
	}
	if expires != nil {
		if t.Expires, err = parseTime(expires); err != nil {
			return err
		}
	}
	if revoked != nil {
		if t.Revoked, err = parseTime(revoked); err != nil {
			return err
		}
	}
	return nil
}

// currentToken returns the current token of a name on a site, locking its
// row on PostgreSQL until the transaction ends.
func (s *Store) currentToken(ctx context.Context, tx *sql.Tx, siteID, name string) (Token, error) {
	lock := ""
	if s.dsn.Backend == PostgreSQL {
		lock = " FOR UPDATE OF t"
	}
	ts, err := s.queryTokens(ctx, tx, "WHERE t.site_id = ? AND t.name = ? AND t.revoked_at IS NULL AND t.replaced_by IS NULL"+lock, siteID, name)
	if err != nil {
		return Token{}, err
	}
	if len(ts) == 0 {
		return Token{}, fmt.Errorf("%w: no active token named %q on %s; run 'gs-auth-token list' to see them, and give --site for a site's token", ErrNotFound, name, siteText(siteID))
	}
	return ts[0], nil
}

type newID struct{ id, plain string }

func (s *Store) reserveID() (newID, error) {
	plain, id, err := token.NewFrom(s.random)
	if err != nil {
		return newID{}, err
	}
	return newID{id: id, plain: plain}, nil
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, name, siteID string, expiresIn time.Duration) (string, Token, error) {
	id, err := s.reserveID()
	if err != nil {
		return "", Token{}, err
	}
	return s.insertTokenWithID(ctx, tx, id.id, id.plain, name, siteID, expiresIn)
}

func (s *Store) insertTokenWithID(ctx context.Context, tx *sql.Tx, id, plain, name, siteID string, expiresIn time.Duration) (string, Token, error) {
	now := s.stamp()
	t := Token{ID: id, Name: name, SiteID: siteID, Created: now}
	var expires any
	if expiresIn > 0 {
		t.Expires = now.Add(expiresIn)
		expires = s.timeArg(t.Expires)
	}
	sum := token.Sum(plain)
	_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO gs_auth_token (id, name, site_id, digest, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`), id, name, siteID, hex.EncodeToString(sum[:]), s.timeArg(now), expires)
	if isUniqueViolation(err) {
		return "", Token{}, fmt.Errorf("%w: a token named %q is already active on %s", ErrExists, name, siteText(siteID))
	}
	if err != nil {
		return "", Token{}, s.opError("store token in", err)
	}
	return plain, t, nil
}

// beginWrite starts a transaction for a change of tokens. SQLite takes its
// write lock at once (the DSN sets _txlock=immediate), so concurrent
// changes run one after the other.
func (s *Store) beginWrite(ctx context.Context) (*sql.Tx, error) {
	return s.db.BeginTx(ctx, nil)
}

// stamp returns the time to store for a change made now: the clock in UTC,
// truncated to the microsecond, the resolution of PostgreSQL's timestamps,
// so that a stored time reads back exactly on both backends and expiry
// falls at the same instant everywhere.
func (s *Store) stamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

func siteText(siteID string) string {
	if siteID == "" {
		return "the install-wide site"
	}
	return fmt.Sprintf("site %q", siteID)
}

// HasUsableToken reports whether any token authenticates requests for site
// siteID now: GroupServer's plain-text token, or a named token of the site
// or of every site that is neither revoked nor expired. With siteOnly, as
// for a site that refuses install-wide tokens, only the site's own named
// tokens count.
func (s *Store) HasUsableToken(ctx context.Context, siteID string, siteOnly bool) (bool, error) {
	clause := "WHERE t.site_id = ? AND t.revoked_at IS NULL"
	if !siteOnly || siteID == "" {
		set, err := s.TokenSet(ctx, siteID)
		if err != nil {
			return false, err
		}
		if set.Len() > 0 {
			return true, nil
		}
		clause = "WHERE (t.site_id = ? OR t.site_id = '') AND t.revoked_at IS NULL"
	}
	tokens, err := s.queryTokens(ctx, s.db, clause, siteID)
	if err != nil {
		return false, err
	}
	now := s.now()
	for _, t := range tokens {
		if t.Valid(now) {
			return true, nil
		}
	}
	return false, nil
}
