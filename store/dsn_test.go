package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/store"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name        string
		dsn         string
		wantBackend store.Backend
		wantPath    string
	}{
		{"postgres URL", "postgres://gs:" + canary + "@127.0.0.1:5432/groupserver", store.PostgreSQL, ""},
		{"postgresql URL", "postgresql://gs@127.0.0.1/groupserver?sslmode=disable", store.PostgreSQL, ""},
		{"postgresql socket host", "postgresql:///groupserver?host=/var/run/postgresql", store.PostgreSQL, ""},
		{"postgres password with at sign", "postgres://gs:" + canary + "@x@127.0.0.1/groupserver", store.PostgreSQL, ""},
		{"postgres encoded password", "postgres://gs:s3cr3t%2Dcanary@127.0.0.1/groupserver", store.PostgreSQL, ""},
		{"postgresql without host", "postgresql:///groupserver", store.PostgreSQL, ""},
		{"upper case scheme", "POSTGRESQL://gs:" + canary + "@127.0.0.1/groupserver", store.PostgreSQL, ""},
		{"sqlite relative", "sqlite:tokens.db", store.SQLite, "tokens.db"},
		{"sqlite dot relative", "sqlite:./data/tokens.db", store.SQLite, "./data/tokens.db"},
		{"sqlite absolute", "sqlite:/var/lib/gs/tokens.db", store.SQLite, "/var/lib/gs/tokens.db"},
		{"sqlite three slashes", "sqlite:///data/tokens.db", store.SQLite, "data/tokens.db"},
		{"sqlite four slashes", "sqlite:////var/lib/gs/tokens.db", store.SQLite, "/var/lib/gs/tokens.db"},
		{"file localhost", "file://localhost/var/lib/gs/tokens.db", store.SQLite, "/var/lib/gs/tokens.db"},
		{"sqlite3 scheme", "sqlite3:tokens.db", store.SQLite, "tokens.db"},
		{"file relative", "file:tokens.db", store.SQLite, "tokens.db"},
		{"file three slashes", "file:///var/lib/gs/tokens.db", store.SQLite, "/var/lib/gs/tokens.db"},
		{"bare relative path", "./gs-auth-token.db", store.SQLite, "./gs-auth-token.db"},
		{"bare name", "gs-auth-token.db", store.SQLite, "gs-auth-token.db"},
		{"bare absolute path", "/var/lib/gs/tokens.db", store.SQLite, "/var/lib/gs/tokens.db"},
		{"path with spaces", "sqlite:/tmp/my tokens.db", store.SQLite, "/tmp/my tokens.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := store.ParseDSN(tt.dsn)

			if err != nil {
				t.Fatalf("ParseDSN(%q) failed: %v", store.Redact(tt.dsn), err)
			}
			if d.Backend != tt.wantBackend {
				t.Errorf("ParseDSN(%q).Backend = %q, expected %q", store.Redact(tt.dsn), d.Backend, tt.wantBackend)
			}
			if d.Path != tt.wantPath {
				t.Errorf("ParseDSN(%q).Path = %q, expected %q", store.Redact(tt.dsn), d.Path, tt.wantPath)
			}
			if strings.Contains(d.String(), canary) {
				t.Errorf("ParseDSN(%q).String() = %q contains the password", store.Redact(tt.dsn), d.String())
			}
		})
	}
}

func TestParseDSNInvalid(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		wantMsg string // a substring of the expected message
	}{
		{"empty", "", "empty"},
		{"whitespace only", " \t\n", "empty"},
		{"leading space", " sqlite:tokens.db", "whitespace"},
		{"trailing newline", "postgres://gs:" + canary + "@127.0.0.1/gs\n", "whitespace"},
		{"mysql", "mysql://x", `unknown scheme "mysql"`},
		{"mysql with password", "mysql://gs:" + canary + "@127.0.0.1/gs", `unknown scheme "mysql"`},
		{"http", "http://gs:" + canary + "@127.0.0.1/", `unknown scheme "http"`},
		{"postgresql one slash", "postgresql:/gs:" + canary + "@127.0.0.1/gs", "must be followed by //"},
		{"postgres no slashes", "postgres:gs:" + canary + "@127.0.0.1/gs", "must be followed by //"},
		{"bad percent-encoding", "postgres://gs:" + canary + "%ZZ@127.0.0.1/gs", "percent-encoding"},
		{"bad port", "postgres://gs:" + canary + "@127.0.0.1:99999/gs", "invalid PostgreSQL URL"},
		{"port not a number", "postgres://gs:" + canary + "@127.0.0.1:abc/gs", "malformed PostgreSQL URL"},
		{"bad sslmode", "postgres://gs:" + canary + "@127.0.0.1/gs?sslmode=sometimes", "invalid PostgreSQL URL"},
		{"keyword=value", "host=127.0.0.1 user=gs password=" + canary + " dbname=gs", "keyword=value"},
		{"keyword=value dbname only", "dbname=gs", "keyword=value"},
		{"keyword=value quoted password", "host=127.0.0.1 password='" + canary + " x' dbname=gs", "keyword=value"},
		{"keyword=value quoted password with space", "host=127.0.0.1 password='x " + canary + "' dbname=gs", "keyword=value"},
		{"keyword=value spaces around equals", "host=127.0.0.1 password = " + canary + " dbname=gs", "keyword=value"},
		{"sqlite empty path", "sqlite:", "names no file"},
		{"sqlite query", "sqlite:tokens.db?mode=ro", "no query parameters"},
		{"sqlite fragment", "sqlite:tokens.db#x", "no query parameters"},
		{"sqlite memory", "sqlite::memory:", "in-memory"},
		{"sqlite two slashes", "sqlite://tokens.db", "not a host"},
		{"file remote host", "file://fileserver/tokens.db", "another machine"},
		{"sqlite NUL", "sqlite:tokens\x00.db", "NUL"},
		{"file query", "file:tokens.db?cache=shared", "no query parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := store.ParseDSN(tt.dsn)

			if err == nil {
				t.Fatalf("ParseDSN(%q) = %+v, expected an error", store.Redact(tt.dsn), d)
			}
			if !errors.Is(err, store.ErrInvalidDSN) {
				t.Errorf("ParseDSN error %v does not match store.ErrInvalidDSN", err)
			}
			var de *store.DSNError
			if !errors.As(err, &de) {
				t.Errorf("ParseDSN error %T is not a *store.DSNError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseDSN error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("ParseDSN error %q contains the password", err)
			}
			if de != nil && strings.Contains(de.Hint, canary) {
				t.Errorf("ParseDSN hint %q contains the password", de.Hint)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"url password", "postgres://gs:pw@127.0.0.1:5432/db", "postgres://gs:xxxxx@127.0.0.1:5432/db"},
		{"url no password", "postgres://gs@127.0.0.1:5432/db", "postgres://gs@127.0.0.1:5432/db"},
		{"url no user", "postgres://127.0.0.1:5432/db", "postgres://127.0.0.1:5432/db"},
		{"url empty password", "postgres://gs:@127.0.0.1/db", "postgres://gs:xxxxx@127.0.0.1/db"},
		{"password with at sign", "postgres://gs:p@ss@127.0.0.1/db", "postgres://gs:xxxxx@127.0.0.1/db"},
		{"password with colon", "postgres://gs:p:ss@127.0.0.1/db", "postgres://gs:xxxxx@127.0.0.1/db"},
		{"one slash", "postgresql:/gs:pw@127.0.0.1/db", "postgresql:/gs:xxxxx@127.0.0.1/db"},
		{"no slashes", "postgresql:gs:pw@127.0.0.1/db", "postgresql:gs:xxxxx@127.0.0.1/db"},
		{"password parameter", "postgres://gs@127.0.0.1/db?password=pw&sslmode=disable", "postgres://gs@127.0.0.1/db?password=xxxxx&sslmode=disable"},
		{"upper case parameter", "postgres://gs@127.0.0.1/db?PASSWORD=pw", "postgres://gs@127.0.0.1/db?PASSWORD=xxxxx"},
		{"keyword=value", "host=127.0.0.1 password=pw user=gs", "host=127.0.0.1 password=xxxxx user=gs"},
		{"keyword=value quoted", "host=127.0.0.1 password='p w' user=gs", "host=127.0.0.1 password=xxxxx user=gs"},
		{"keyword=value quoted escape", `host=127.0.0.1 password='p\' w' user=gs`, "host=127.0.0.1 password=xxxxx user=gs"},
		{"keyword=value unterminated quote", "host=127.0.0.1 password='p w", "host=127.0.0.1 password=xxxxx"},
		{"keyword=value spaces around equals", "host=127.0.0.1 password = pw user=gs", "host=127.0.0.1 password = xxxxx user=gs"},
		{"sqlite", "sqlite:/var/lib/gs/tokens.db", "sqlite:/var/lib/gs/tokens.db"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, expected %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubPassword(t *testing.T) {
	tests := []struct {
		name       string
		msg        string
		dsn        string
		pgpassword string
		want       string
	}{
		{"url password", "login with " + canary + " failed", "postgres://gs:" + canary + "@127.0.0.1/db", "", "login with xxxxx failed"},
		{"every occurrence", canary + " and " + canary, "postgres://gs:" + canary + "@127.0.0.1/db", "", "xxxxx and xxxxx"},
		{"decoded password", "login with " + canary + " failed", "postgres://gs:s3cr3t%2Dcanary@127.0.0.1/db", "", "login with xxxxx failed"},
		{"raw encoded password", "bad s3cr3t%2Dcanary", "postgres://gs:s3cr3t%2Dcanary@127.0.0.1/db", "", "bad xxxxx"},
		{"password parameter", "login with " + canary + " failed", "postgres://gs@127.0.0.1/db?password=" + canary, "", "login with xxxxx failed"},
		{"malformed url", "login with " + canary + " failed", "postgresql:/gs:" + canary + "@127.0.0.1/db", "", "login with xxxxx failed"},
		{"PGPASSWORD", "login with " + canary + " failed", "postgres://gs@127.0.0.1/db", canary, "login with xxxxx failed"},
		{"no password", "connection refused", "postgres://gs@127.0.0.1/db", "", "connection refused"},
		{"sqlite", "unable to open tokens.db", "sqlite:tokens.db", "", "unable to open tokens.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", tt.pgpassword)

			if got := store.ScrubPassword(tt.msg, tt.dsn); got != tt.want {
				t.Errorf("ScrubPassword(%q, %q) = %q, expected %q", tt.msg, tt.dsn, got, tt.want)
			}
		})
	}
}

func TestDSNStringMasksPassword(t *testing.T) {
	d, err := store.ParseDSN("postgresql://gs:" + canary + "@127.0.0.1:5432/groupserver")
	if err != nil {
		t.Fatalf("ParseDSN failed: %v", err)
	}

	if got, want := d.String(), "postgresql://gs:xxxxx@127.0.0.1:5432/groupserver"; got != want {
		t.Errorf("String() = %q, expected %q", got, want)
	}
}
