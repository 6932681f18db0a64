package token

import "errors"

// ErrMismatch is the condition of a supplied token that does not match a
// stored one: the Go counterpart of GroupServer's AuthenticationTokenMismatch.
// Every [*MismatchError] matches it under [errors.Is].
var ErrMismatch = errors.New("authentication token mismatch")

// Reason is the cause of a rejected token. Reasons go to logs and the audit
// trail; clients get one generic message whatever the reason.
type Reason int

const (
	// ReasonUnknown is a well-formed token that matches no stored token.
	ReasonUnknown Reason = iota
	// ReasonMissing is an absent or empty token.
	ReasonMissing
	// ReasonMalformed is a token that could never be valid: too long, or
	// with whitespace, control or non-ASCII bytes.
	ReasonMalformed
	// ReasonNoneStored is a site with no usable stored token, which accepts
	// nothing.
	ReasonNoneStored
	// ReasonExpired is a known token past its expiry, or past the grace
	// period of a rotation.
	ReasonExpired
	// ReasonRevoked is a known token that was revoked.
	ReasonRevoked
	// ReasonWrongSite is a known token of another site.
	ReasonWrongSite
)

// String returns a short lowercase phrase for the reason.
func (r Reason) String() string {
	switch r {
	case ReasonUnknown:
		return "unknown token"
	case ReasonMissing:
		return "missing token"
	case ReasonMalformed:
		return "malformed token"
	case ReasonNoneStored:
		return "no token stored"
	case ReasonExpired:
		return "expired token"
	case ReasonRevoked:
		return "revoked token"
	case ReasonWrongSite:
		return "token of another site"
	default:
		return "rejected token"
	}
}

// MismatchError is the error of a rejected token. Its message never contains
// the supplied or the stored token.
type MismatchError struct {
	// Reason is the cause of the rejection.
	Reason Reason
	// TokenID is the public id of the presented token when it is known,
	// for an expired, revoked or other site's token.
	TokenID string
	// TokenName is the name of that token, or empty.
	TokenName string
}

// Error returns the condition and the reason, for example
// "authentication token mismatch: unknown token".
func (e *MismatchError) Error() string {
	return ErrMismatch.Error() + ": " + e.Reason.String()
}

// Is reports whether target is [ErrMismatch].
func (e *MismatchError) Is(target error) bool {
	return target == ErrMismatch
}
