package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// MaxLength is the longest token [Set.Check] hashes. Longer input is
// rejected as malformed before any work that depends on stored tokens.
const MaxLength = 512

// Digest is the SHA-256 digest of a token. Tokens are compared, and new
// tokens are stored, only as digests.
type Digest [sha256.Size]byte

// Sum returns the digest of token. Tokens up to [MaxLength] bytes are
// hashed from a buffer on the stack, so a check allocates nothing.
func Sum(token string) Digest {
	if len(token) > MaxLength {
		return sha256.Sum256([]byte(token))
	}
	var buf [MaxLength]byte
	n := copy(buf[:], token)
	return sha256.Sum256(buf[:n])
}

// Entry is one accepted token, known by its digest.
type Entry struct {
	// Digest is the SHA-256 digest of the token.
	Digest Digest
	// ID names the token in logs and audit events. It is never secret.
	ID string
	// Name is the token's name, such as "mail-gateway", or empty.
	Name string
	// SiteID is the site the token belongs to. The empty string is the
	// install-wide site.
	SiteID string
}

// Set is the set of tokens that one site accepts. The zero value accepts
// nothing. A Set is immutable after [NewSet], so it is safe for concurrent
// use.
type Set struct {
	entries []Entry
}

// NewSet returns a Set that accepts the given entries.
func NewSet(entries ...Entry) *Set {
	return &Set{entries: append([]Entry(nil), entries...)}
}

// Len returns the number of accepted tokens.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Check reports whether supplied is one of the accepted tokens and returns
// its entry. On failure it returns a [*MismatchError].
//
// Every stored digest is compared, in constant time, whether or not an
// earlier one matched. Input that could never be a token (empty, too long,
// or with bytes outside printable ASCII) fails before hashing: that outcome
// depends only on the input, not on any stored secret.
func (s *Set) Check(supplied string) (Entry, error) {
	if supplied == "" {
		return Entry{}, &MismatchError{Reason: ReasonMissing}
	}
	if err := Validate(supplied); err != nil {
		return Entry{}, &MismatchError{Reason: ReasonMalformed}
	}
	if s.Len() == 0 {
		return Entry{}, &MismatchError{Reason: ReasonNoneStored}
	}

	sum := Sum(supplied)
	found := -1
	for i := range s.entries {
		eq := subtle.ConstantTimeCompare(sum[:], s.entries[i].Digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Entry{}, &MismatchError{Reason: ReasonUnknown}
	}
	return s.entries[found], nil
}

// Validate returns an error when s could not be a token: when it is empty,
// longer than [MaxLength], or holds a byte outside printable ASCII
// (0x21 to 0x7E). Whitespace is never trimmed, so a token with a trailing
// newline is invalid. The error names the problem, never the value.
func Validate(s string) error {
	if s == "" {
		return errors.New("token is empty")
	}
	if len(s) > MaxLength {
		return fmt.Errorf("token is %d bytes long, more than the maximum of %d", len(s), MaxLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return fmt.Errorf("token contains whitespace at byte %d", i)
		case c < 0x21 || c > 0x7e:
			return fmt.Errorf("token contains a byte outside printable ASCII at byte %d", i)
		}
	}
	return nil
}
