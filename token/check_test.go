package token_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// storedToken is a well-formed token for tests. It is not secret.
const storedToken = "k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i"

func legacySet() *token.Set {
	return token.NewSet(token.Entry{Digest: token.Sum(storedToken), ID: "legacy"})
}

func TestCheckAcceptsExactToken(t *testing.T) {
	entry, err := legacySet().Check(storedToken)

	if err != nil {
		t.Fatalf("Check(stored token) failed: %v", err)
	}
	if entry.ID != "legacy" {
		t.Errorf("Check(stored token) entry ID = %q, expected %q", entry.ID, "legacy")
	}
	if entry.Digest != token.Sum(storedToken) {
		t.Errorf("Check(stored token) entry digest differs from the stored digest")
	}
}

// checkRejected asserts that err is a token mismatch with the given reason,
// that entry is the zero entry, and that the message contains neither
// supplied nor any of the stored tokens.
func checkRejected(t *testing.T, entry token.Entry, err error, supplied string, want token.Reason, stored ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Check(%q) accepted it as %q, expected a rejection", supplied, entry.ID)
	}
	if entry != (token.Entry{}) {
		t.Errorf("Check(%q) returned entry %q with its error, expected the zero entry", supplied, entry.ID)
	}
	if !errors.Is(err, token.ErrMismatch) {
		t.Errorf("Check(%q) error %v does not match token.ErrMismatch", supplied, err)
	}
	var me *token.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Check(%q) error %T is not a *token.MismatchError", supplied, err)
	}
	if me.Reason != want {
		t.Errorf("Check(%q) reason = %v, expected %v", supplied, me.Reason, want)
	}
	msg := err.Error()
	if supplied != "" && strings.Contains(msg, supplied) {
		t.Errorf("Check(%q) error %q contains the supplied token", supplied, msg)
	}
	for _, s := range stored {
		if strings.Contains(msg, s) {
			t.Errorf("Check(%q) error %q contains the stored token", supplied, msg)
		}
	}
}

func TestCheckRejectsNearMisses(t *testing.T) {
	tests := []struct {
		name     string
		supplied string
		want     token.Reason
	}{
		{"one char more", storedToken + "x", token.ReasonUnknown},
		{"one char less", storedToken[:len(storedToken)-1], token.ReasonUnknown},
		{"first char less", storedToken[1:], token.ReasonUnknown},
		{"doubled", storedToken + storedToken, token.ReasonUnknown},
		{"last char changed", storedToken[:len(storedToken)-1] + "j", token.ReasonUnknown},
		{"upper case", strings.ToUpper(storedToken), token.ReasonUnknown},
		{"prefix", storedToken[:8], token.ReasonUnknown},
		{"trailing newline", storedToken + "\n", token.ReasonMalformed},
		{"trailing CRLF", storedToken + "\r\n", token.ReasonMalformed},
		{"trailing tab", storedToken + "\t", token.ReasonMalformed},
		{"leading space", " " + storedToken, token.ReasonMalformed},
		{"inner space", storedToken[:16] + " " + storedToken[16:], token.ReasonMalformed},
		{"non-ASCII letter", storedToken[:31] + "é", token.ReasonMalformed},
		{"invalid UTF-8", storedToken + "\xff", token.ReasonMalformed},
		{"NUL byte", storedToken + "\x00", token.ReasonMalformed},
		{"DEL byte", storedToken + "\x7f", token.ReasonMalformed},
		{"too long", strings.Repeat(storedToken, 17), token.ReasonMalformed},
		{"empty", "", token.ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry, err := legacySet().Check(tt.supplied)

			checkRejected(t, entry, err, tt.supplied, tt.want, storedToken)
		})
	}
}

func TestCheckEmptySetRejectsAll(t *testing.T) {
	var nilSet *token.Set
	sets := []struct {
		name string
		set  *token.Set
	}{
		{"NewSet", token.NewSet()},
		{"zero value", &token.Set{}},
		{"nil", nilSet},
	}
	inputs := []struct {
		name     string
		supplied string
		want     token.Reason
	}{
		{"token", storedToken, token.ReasonNoneStored},
		{"one char", "Q", token.ReasonNoneStored},
		{"empty", "", token.ReasonMissing},
		{"malformed", storedToken + "\n", token.ReasonMalformed},
	}
	for _, s := range sets {
		for _, in := range inputs {
			t.Run(s.name+"/"+in.name, func(t *testing.T) {
				entry, err := s.set.Check(in.supplied)

				checkRejected(t, entry, err, in.supplied, in.want)
			})
		}
	}
}

// TestCheckRejectsEmptyStoredToken checks that a set holding the digest of
// the empty string still rejects an empty token.
func TestCheckRejectsEmptyStoredToken(t *testing.T) {
	set := token.NewSet(token.Entry{Digest: token.Sum(""), ID: "empty"})

	entry, err := set.Check("")

	checkRejected(t, entry, err, "", token.ReasonMissing)
}

func TestCheckSeveralEntries(t *testing.T) {
	tokens := []string{"first0token0AAAAAAAAAAAAAAAAAAAA", "second0token0BBBBBBBBBBBBBBBBBBB", "third0token0CCCCCCCCCCCCCCCCCCCC"}
	var entries []token.Entry
	for i, tok := range tokens {
		entries = append(entries, token.Entry{Digest: token.Sum(tok), ID: tok[:5], SiteID: "site" + string(rune('1'+i))})
	}
	set := token.NewSet(entries...)

	if set.Len() != len(tokens) {
		t.Errorf("Len() = %d, expected %d", set.Len(), len(tokens))
	}
	for i, tok := range tokens {
		t.Run(entries[i].ID, func(t *testing.T) {
			entry, err := set.Check(tok)

			if err != nil {
				t.Fatalf("Check(token %d) failed: %v", i, err)
			}
			if entry != entries[i] {
				t.Errorf("Check(token %d) = %+v, expected %+v", i, entry, entries[i])
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		entry, err := set.Check(storedToken)

		checkRejected(t, entry, err, storedToken, token.ReasonUnknown, tokens...)
	})
}

func TestNewSetCopiesEntries(t *testing.T) {
	entries := []token.Entry{{Digest: token.Sum(storedToken), ID: "legacy"}}
	set := token.NewSet(entries...)

	entries[0].Digest = token.Sum("other")

	if _, err := set.Check(storedToken); err != nil {
		t.Errorf("Check(stored token) after changing the caller's slice failed: %v", err)
	}
}

func TestSetLen(t *testing.T) {
	var nilSet *token.Set
	tests := []struct {
		name string
		set  *token.Set
		want int
	}{
		{"nil", nilSet, 0},
		{"zero value", &token.Set{}, 0},
		{"empty", token.NewSet(), 0},
		{"one", legacySet(), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.set.Len(); got != tt.want {
				t.Errorf("Len() = %d, expected %d", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string // a substring of the expected error, or "" for none
	}{
		{"legacy token", storedToken, ""},
		{"one char", "a", ""},
		{"punctuation", "!~-_.+/=", ""},
		{"max length", strings.Repeat("a", token.MaxLength), ""},
		{"empty", "", "empty"},
		{"over max length", strings.Repeat("a", token.MaxLength+1), "513 bytes"},
		{"space", "ab cd", "whitespace at byte 2"},
		{"tab", "\tabcd", "whitespace at byte 0"},
		{"newline", "abcd\n", "whitespace at byte 4"},
		{"carriage return", "abcd\r", "whitespace at byte 4"},
		{"NUL", "ab\x00", "printable ASCII at byte 2"},
		{"escape", "\x1bab", "printable ASCII at byte 0"},
		{"DEL", "ab\x7f", "printable ASCII at byte 2"},
		{"Latin-1 byte", "ab\xe9", "printable ASCII at byte 2"},
		{"UTF-8 letter", "abé", "printable ASCII at byte 2"},
		{"non-breaking space", "ab\u00a0", "printable ASCII at byte 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := token.Validate(tt.input)

			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate(%q) = %v, expected nil", tt.input, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, expected an error containing %q", tt.input, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%q) = %q, expected it to contain %q", tt.input, err, tt.wantErr)
			}
		})
	}
}

func TestValidateOmitsValue(t *testing.T) {
	secret := "s3cr3t-canary-value"
	for _, input := range []string{secret + "\n", " " + secret, secret + "\x00", secret + strings.Repeat("x", token.MaxLength)} {
		err := token.Validate(input)
		if err == nil {
			t.Fatalf("Validate(%q) = nil, expected an error", input)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Validate(%q) error %q contains the value", input, err)
		}
	}
}

func TestReasonString(t *testing.T) {
	tests := []struct {
		reason token.Reason
		want   string
	}{
		{token.ReasonUnknown, "unknown token"},
		{token.ReasonMissing, "missing token"},
		{token.ReasonMalformed, "malformed token"},
		{token.ReasonNoneStored, "no token stored"},
		{token.ReasonExpired, "expired token"},
		{token.ReasonRevoked, "revoked token"},
		{token.ReasonWrongSite, "token of another site"},
		{token.Reason(99), "rejected token"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.reason.String(); got != tt.want {
				t.Errorf("Reason(%d).String() = %q, expected %q", int(tt.reason), got, tt.want)
			}
		})
	}
}

func TestMismatchErrorMessage(t *testing.T) {
	err := &token.MismatchError{Reason: token.ReasonUnknown}

	if got, want := err.Error(), "authentication token mismatch: unknown token"; got != want {
		t.Errorf("Error() = %q, expected %q", got, want)
	}
}

func TestMismatchErrorIsOnlyErrMismatch(t *testing.T) {
	err := &token.MismatchError{Reason: token.ReasonUnknown}

	if errors.Is(err, errors.New(token.ErrMismatch.Error())) {
		t.Errorf("MismatchError matches an unrelated error with the same text")
	}
}
