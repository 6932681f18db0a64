package token_test

import (
	"errors"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// mismatchMessages are every message a rejected check may return.
var mismatchMessages = map[string]bool{
	"authentication token mismatch: unknown token":   true,
	"authentication token mismatch: missing token":   true,
	"authentication token mismatch: malformed token": true,
	"authentication token mismatch: no token stored": true,
}

// FuzzCheck checks a set holding one stored token against a supplied one.
// The seed corpus is in testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	f.Add(storedToken, storedToken)
	f.Add(storedToken, storedToken+"\n")
	f.Add(storedToken+"\n", storedToken+"\n")

	f.Fuzz(func(t *testing.T, stored, supplied string) {
		validateErr := token.Validate(supplied)
		if validateErr == nil {
			if len(supplied) == 0 || len(supplied) > token.MaxLength {
				t.Errorf("Validate accepted %q of length %d", supplied, len(supplied))
			}
			for i := 0; i < len(supplied); i++ {
				if supplied[i] < 0x21 || supplied[i] > 0x7e {
					t.Errorf("Validate accepted %q with byte %#x at %d", supplied, supplied[i], i)
				}
			}
		}

		set := token.NewSet(token.Entry{Digest: token.Sum(stored), ID: "stored"})
		entry, err := set.Check(supplied)

		if err == nil {
			if supplied != stored {
				t.Fatalf("Check(%q) accepted a token that differs from the stored %q", supplied, stored)
			}
			if validateErr != nil {
				t.Errorf("Check(%q) accepted a token that Validate rejects: %v", supplied, validateErr)
			}
			if entry.ID != "stored" {
				t.Errorf("Check(%q) entry ID = %q, expected %q", supplied, entry.ID, "stored")
			}
			return
		}
		if supplied == stored && validateErr == nil {
			t.Errorf("Check(%q) rejected the stored token: %v", supplied, err)
		}
		if !errors.Is(err, token.ErrMismatch) {
			t.Errorf("Check(%q) error %v does not match token.ErrMismatch", supplied, err)
		}
		var me *token.MismatchError
		if !errors.As(err, &me) {
			t.Errorf("Check(%q) error %T is not a *token.MismatchError", supplied, err)
		}
		if !mismatchMessages[err.Error()] {
			t.Errorf("Check(%q) error %q is not one of the fixed mismatch messages", supplied, err)
		}
	})
}
