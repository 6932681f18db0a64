package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// The option row in which GroupServer keeps its install-wide token.
const (
	LegacyComponent = "gs.auth.token"
	LegacyOption    = "authToken"
)

// LegacyTokenID is the id by which logs and audit events name the token in
// GroupServer's option row.
const LegacyTokenID = "legacy"

// ReplaceLegacyToken replaces GroupServer's install-wide token with tok in
// one transaction: every gs.auth.token/authToken row is deleted and one row
// with an empty site and group is inserted. Concurrent readers see the old
// token or the new one, never neither, and concurrent replacements run one
// after the other. tok must pass [token.Validate].
func (s *Store) ReplaceLegacyToken(ctx context.Context, tok string) error {
	if err := token.Validate(tok); err != nil {
		return fmt.Errorf("store: refusing to store an invalid token: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.opError("replace token in", err)
	}
	defer tx.Rollback()

	if s.dsn.Backend == PostgreSQL {
		// This mode blocks other writers to the table, including another
		// replacement, but not readers: they keep seeing the old row until
		// the commit. SQLite gets the same effect from BEGIN IMMEDIATE.
		if _, err := tx.ExecContext(ctx, "LOCK TABLE option IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return s.opError("replace token in", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM option WHERE component_id = ? AND option_id = ?"),
		LegacyComponent, LegacyOption); err != nil {
		return s.opError("replace token in", err)
	}
	if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO option (component_id, option_id, site_id, group_id, value) VALUES (?, ?, '', '', ?)"),
		LegacyComponent, LegacyOption, tok); err != nil {
		return s.opError("replace token in", err)
	}
	// The last use recorded was the old token's.
	if err := s.forgetLegacyUse(ctx, tx); err != nil {
		return s.opError("replace token in", err)
	}
	if err := tx.Commit(); err != nil {
		return s.opError("replace token in", err)
	}
	s.caches.invalidate()
	return nil
}

// legacyEntries returns the install-wide token in GroupServer's option row
// as a set entry. A stored value that could never match, such as one with a
// trailing newline, is left out and logged as a misconfiguration, so a site
// with only such a value accepts nothing.
func (s *Store) legacyEntries(ctx context.Context) ([]token.Entry, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT value FROM option WHERE component_id = ? AND option_id = ? AND site_id = '' AND group_id = ''"),
		LegacyComponent, LegacyOption)
	if err != nil {
		return nil, s.opError("read tokens from", err)
	}
	defer rows.Close()

	var out []token.Entry
	for rows.Next() {
		var v *string
		if err := rows.Scan(&v); err != nil {
			return nil, s.opError("read tokens from", err)
		}
		if v == nil {
			s.warnInvalidStored("the value is NULL")
			continue
		}
		if err := token.Validate(*v); err != nil {
			s.warnInvalidStored(err.Error())
			continue
		}
		out = append(out, token.Entry{Digest: token.Sum(*v), ID: LegacyTokenID})
	}
	if err := rows.Err(); err != nil {
		return nil, s.opError("read tokens from", err)
	}
	return out, nil
}

// TokenSet returns the set of tokens that site siteID accepts. Errors match
// [ErrUnavailable] when the database cannot be read.
func (s *Store) TokenSet(ctx context.Context, siteID string) (*token.Set, error) {
	entries, err := s.legacyEntries(ctx)
	if err != nil {
		return nil, err
	}
	return token.NewSet(entries...), nil
}

// Verify checks supplied against the tokens site siteID accepts, reading
// them from the database on every call: a token in the new format by its
// id, and any other against GroupServer's plain-text token. It returns the
// matching entry, a [*token.MismatchError], or an error matching
// [ErrUnavailable]. A match records the token's last use, at most once per
// [LastUseInterval].
func (s *Store) Verify(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	return s.verify(ctx, siteID, supplied, false)
}

// VerifySiteOnly checks supplied as Verify does, but refuses install-wide
// tokens (those of site "", GroupServer's plain-text token among them) on a
// named site, before recording any use.
func (s *Store) VerifySiteOnly(ctx context.Context, siteID, supplied string) (token.Entry, error) {
	return s.verify(ctx, siteID, supplied, siteID != "")
}

func (s *Store) verify(ctx context.Context, siteID, supplied string, siteOnly bool) (token.Entry, error) {
	if supplied == "" {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonMissing}
	}
	if token.HasPrefix(supplied) {
		return s.verifyNamed(ctx, siteID, supplied, siteOnly)
	}
	set, err := s.TokenSet(ctx, siteID)
	if err != nil {
		return token.Entry{}, err
	}
	entry, err := set.Check(supplied)
	if err == nil && siteOnly {
		return token.Entry{}, &token.MismatchError{Reason: token.ReasonWrongSite, TokenID: entry.ID}
	}
	if err == nil {
		s.usage.touch(entry.ID, s.now())
	}
	return entry, err
}

// invalidStoredEvery is the minimum interval between two log lines about
// the same problem with the stored token, which is read on every reload or
// request.
const invalidStoredEvery = 10 * time.Minute

// warnInvalidStored logs a stored token that can never match, as a
// misconfiguration, at most once per invalidStoredEvery for each problem.
func (s *Store) warnInvalidStored(problem string) {
	s.warnMu.Lock()
	last, seen := s.warned[problem]
	now := time.Now()
	if seen && now.Sub(last) < invalidStoredEvery {
		s.warnMu.Unlock()
		return
	}
	if s.warned == nil {
		s.warned = make(map[string]time.Time)
	}
	s.warned[problem] = now
	s.warnMu.Unlock()
	s.logger.Warn("stored token is invalid, so it is ignored: "+problem,
		slog.String("component_id", LegacyComponent), slog.String("option_id", LegacyOption),
		slog.String("hint", "run gs_auth_token_create to store a new token"))
}

// forgetLegacyUse deletes the last use of the plain-text token, when the
// table for it exists: a database that GroupServer's tools manage may not
// have been migrated.
func (s *Store) forgetLegacyUse(ctx context.Context, tx *sql.Tx) error {
	var exists bool
	q := "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gs_auth_token_use')"
	if s.dsn.Backend == PostgreSQL {
		q = "SELECT to_regclass('gs_auth_token_use') IS NOT NULL"
	}
	if err := tx.QueryRowContext(ctx, q).Scan(&exists); err != nil || !exists {
		return err
	}
	_, err := tx.ExecContext(ctx, s.rebind("DELETE FROM gs_auth_token_use WHERE token_id = ?"), LegacyTokenID)
	return err
}
