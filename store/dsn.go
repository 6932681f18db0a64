package store

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Backend names a storage engine.
type Backend string

const (
	// SQLite is the embedded backend, a single file.
	SQLite Backend = "sqlite"
	// PostgreSQL is the production backend, shared by every instance.
	PostgreSQL Backend = "postgresql"
)

// DSN is a parsed data source name. Its String method masks any password.
type DSN struct {
	// Backend is the storage engine the DSN selects.
	Backend Backend
	// Path is the SQLite file, for the SQLite backend.
	Path string

	raw string
	pg  *pgx.ConnConfig
}

// String returns the DSN with its password replaced by "xxxxx".
func (d DSN) String() string {
	return Redact(d.raw)
}

var schemePattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// ParseDSN parses a data source name and selects the backend:
//
//   - postgres://… or postgresql://… selects PostgreSQL;
//   - sqlite:PATH, file:PATH or a bare path selects SQLite. URLs with
//     slashes follow SQLAlchemy for sqlite: (sqlite:///relative.db,
//     sqlite:////absolute.db) and RFC 8089 for file: (file:///absolute.db).
//
// A DSN that cannot be used returns a [*DSNError], which matches
// [ErrInvalidDSN]. No error contains the DSN's password.
func ParseDSN(s string) (DSN, error) {
	if strings.TrimSpace(s) == "" {
		return DSN{}, &DSNError{Problem: "the DSN is empty",
			Hint: "give a DSN such as postgresql://USER@HOST:5432/DB or sqlite:PATH"}
	}
	if s != strings.TrimSpace(s) {
		return DSN{}, &DSNError{DSN: s, Problem: "the DSN has leading or trailing whitespace",
			Hint: "remove the spaces or newline around the DSN"}
	}

	m := schemePattern.FindStringSubmatch(s)
	if m == nil {
		if looksLikeKeywordValue(s) {
			return DSN{}, &DSNError{DSN: s, Problem: "keyword=value connection strings are not supported",
				Hint: "write it as a URL: postgresql://USER@HOST:5432/DB"}
		}
		return parseSQLite(s, s)
	}

	switch scheme := strings.ToLower(m[1]); scheme {
	case "postgres", "postgresql":
		return parsePostgres(s)
	case "sqlite", "sqlite3":
		return parseSQLiteURL(s, s[len(m[0]):])
	case "file":
		return parseFileURL(s, s[len(m[0]):])
	default:
		return DSN{}, &DSNError{DSN: s, Problem: fmt.Sprintf("unknown scheme %q", scheme),
			Hint: "use postgresql://… for PostgreSQL, or sqlite:PATH for a SQLite file"}
	}
}

func parsePostgres(s string) (DSN, error) {
	if !strings.HasPrefix(strings.ToLower(s), "postgres://") && !strings.HasPrefix(strings.ToLower(s), "postgresql://") {
		return DSN{}, &DSNError{DSN: s, Problem: "malformed PostgreSQL URL: the scheme must be followed by //",
			Hint: "write postgresql://USER@HOST:PORT/DB"}
	}
	if _, err := url.Parse(s); err != nil {
		return DSN{}, &DSNError{DSN: s, Problem: "malformed PostgreSQL URL: " + describeURLError(err),
			Hint: "percent-encode special characters in the user name and password (% as %25, @ as %40)"}
	}
	scheme, rest, _ := strings.Cut(s, ":") // pgx accepts only a lower-case scheme
	cfg, err := pgx.ParseConfig(strings.ToLower(scheme) + ":" + rest)
	if err != nil {
		return DSN{}, &DSNError{DSN: s, Problem: "invalid PostgreSQL URL: " + scrub(err.Error(), passwordOf(s)),
			Hint: "check the port, the query parameters and their values"}
	}
	return DSN{Backend: PostgreSQL, raw: s, pg: cfg}, nil
}

// parseSQLiteURL reads the part after "sqlite:" as SQLAlchemy does: three
// slashes and then the path, relative unless it starts with a fourth
// slash. Without slashes, or with one, it is the path itself.
func parseSQLiteURL(raw, rest string) (DSN, error) {
	if after, ok := strings.CutPrefix(rest, "///"); ok {
		return parseSQLite(raw, after)
	}
	if strings.HasPrefix(rest, "//") {
		return DSN{}, &DSNError{DSN: raw, Problem: "a SQLite URL names a file, not a host or an in-memory database",
			Hint: "write sqlite:///relative/path.db or sqlite:////absolute/path.db, or sqlite:PATH"}
	}
	return parseSQLite(raw, rest)
}

// parseFileURL reads the part after "file:" as RFC 8089 does: an
// authority of "" or "localhost" and an absolute path, or a path alone.
func parseFileURL(raw, rest string) (DSN, error) {
	after, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return parseSQLite(raw, rest)
	}
	host, path, _ := strings.Cut(after, "/")
	if host != "" && !strings.EqualFold(host, "localhost") {
		return DSN{}, &DSNError{DSN: raw, Problem: fmt.Sprintf("a file URL with host %q names another machine", host),
			Hint: "write file:///absolute/path.db, or file:PATH"}
	}
	return parseSQLite(raw, "/"+path)
}

func parseSQLite(raw, path string) (DSN, error) {
	if path == "" {
		return DSN{}, &DSNError{DSN: raw, Problem: "the SQLite DSN names no file",
			Hint: "write sqlite:PATH, for example sqlite:./gs-auth-token.db"}
	}
	if strings.ContainsAny(path, "?#") {
		return DSN{}, &DSNError{DSN: raw, Problem: "SQLite DSNs take no query parameters or fragments",
			Hint: "name only the file, for example sqlite:/var/lib/gs/tokens.db"}
	}
	if strings.ContainsRune(path, 0) {
		return DSN{}, &DSNError{DSN: raw, Problem: "the SQLite path contains a NUL byte"}
	}
	if path == ":memory:" {
		return DSN{}, &DSNError{DSN: raw, Problem: "in-memory SQLite databases are not supported because tokens would vanish on exit",
			Hint: "name a file, for example sqlite:./gs-auth-token.db"}
	}
	return DSN{Backend: SQLite, Path: path, raw: raw}, nil
}

func looksLikeKeywordValue(s string) bool {
	for _, key := range []string{"host=", "dbname=", "user=", "port=", "password="} {
		if strings.Contains(s, key) {
			return true
		}
	}
	return false
}

// describeURLError returns the reason of a url.Parse error without the URL,
// which may hold a password.
func describeURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	switch e := err.(type) {
	case url.EscapeError:
		return fmt.Sprintf("invalid percent-encoding %q", string(e))
	case url.InvalidHostError:
		return fmt.Sprintf("invalid character %q in host name", string(e))
	}
	return "it does not parse as a URL"
}

var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*(?:'|$)|[^&\s]*)`)

// Redact returns s with any password masked as "xxxxx": the password in a
// URL's user information and any password= parameter. It masks more than
// needed rather than less when s is malformed, as in postgresql:/u:pw@h/db.
func Redact(s string) string {
	s = passwordParam.ReplaceAllString(s, "${1}xxxxx")
	start, ok := userinfoStart(s)
	if !ok {
		return s
	}
	rest := s[start:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return s
	}
	return s[:start] + rest[:colon] + ":xxxxx" + rest[at:]
}

// userinfoStart returns the index at which the user information of a URL
// DSN would start: after the scheme and any slashes.
func userinfoStart(s string) (int, bool) {
	m := schemePattern.FindStringIndex(s)
	if m == nil {
		return 0, false
	}
	i := m[1]
	for i < len(s) && s[i] == '/' {
		i++
	}
	return i, true
}

// passwordOf returns the password in a URL DSN, or "" when it has none or
// does not parse. The raw and the decoded forms are both returned so that
// either can be scrubbed from messages.
func passwordOf(s string) []string {
	var out []string
	if start, ok := userinfoStart(s); ok {
		rest := s[start:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
					out = append(out, dec)
				}
			}
		}
	}
	if m := passwordParam.FindAllString(s, -1); m != nil {
		for _, kv := range m {
			if _, v, _ := strings.Cut(kv, "="); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// scrub replaces every occurrence of each secret in msg with "xxxxx".
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// ScrubPassword returns msg with every occurrence of the password in dsn,
// and of the PGPASSWORD environment variable, replaced by "xxxxx". Callers
// that print errors of their own beside a DSN use it as a last guard.
func ScrubPassword(msg, dsn string) string {
	secrets := passwordOf(dsn)
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		secrets = append(secrets, pw)
	}
	return scrub(msg, secrets)
}

// PasswordsOf returns the passwords that s carries if it is a DSN: the
// password in a URL's user information, raw and percent-decoded, and the
// value of any password= parameter. Programs use it to mask passwords in
// DSNs that reach their output by mistake, as a misplaced argument.
func PasswordsOf(s string) []string { return passwordOf(s) }
