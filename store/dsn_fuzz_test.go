package store

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseDSN parses arbitrary DSNs with a password marker in them. The
// seed corpus is in testdata/fuzz/FuzzParseDSN.
func FuzzParseDSN(f *testing.F) {
	f.Add("postgres://user:PWCANARY@127.0.0.1:5432/db")
	f.Add("postgresql:/user:PWCANARY@host/db")
	f.Add("postgres://user:PWCANARY%ZZ@host/db")
	f.Add("postgres://user@host/db?password=PWCANARY&sslmode=disable")
	f.Add("host=h password=PWCANARY dbname=d")
	f.Add("mysql://u:PWCANARY@h/db")
	f.Add("sqlite:/tmp/x.db")
	f.Add("file:///var/lib/gs/tokens.db")

	f.Fuzz(func(t *testing.T, dsn string) {
		// The passwords are what passwordOf finds: the user information
		// of a URL and any password= parameter.
		var secrets []string
		for _, pw := range passwordOf(dsn) {
			if len(pw) >= 4 {
				secrets = append(secrets, pw)
			}
		}
		// The same text may also stand elsewhere in the DSN, as in
		// "password=db dbname=db", so an output may keep every copy but
		// the password's own. A percent-decoded password need not appear
		// in the DSN at all, and then no copy is allowed.
		leaks := func(what, s string) {
			for _, pw := range secrets {
				if strings.Count(s, pw) > max(strings.Count(dsn, pw)-1, 0) {
					t.Errorf("%s for DSN %q contains its password %q: %s", what, dsn, pw, s)
				}
			}
		}
		leaks("Redact", Redact(dsn))

		d, err := ParseDSN(dsn)
		if err != nil {
			if !errors.Is(err, ErrInvalidDSN) {
				t.Errorf("ParseDSN(%q) error %v does not match ErrInvalidDSN", dsn, err)
			}
			leaks("the ParseDSN error", err.Error())
			return
		}
		if d.Backend != SQLite && d.Backend != PostgreSQL {
			t.Errorf("ParseDSN(%q) chose backend %q", dsn, d.Backend)
		}
		if d.Backend == SQLite && d.Path == "" {
			t.Errorf("ParseDSN(%q) chose SQLite with no path", dsn)
		}
		leaks("DSN.String()", d.String())
	})
}
