package hook

import (
	"errors"

	"github.com/gs-auth-token/gs-auth-token/token"
)

var (
	// ErrRequired is the condition of a required field that is absent or
	// empty.
	ErrRequired = errors.New("required field missing")
	// ErrInvalid is the condition of a field whose value does not fit its
	// declaration.
	ErrInvalid = errors.New("invalid field value")
)

// FieldError is a problem with one submitted field. It matches
// [ErrRequired] or [ErrInvalid] under [errors.Is].
type FieldError struct {
	// Field is the field's name, without the endpoint's prefix.
	Field string
	// Title is the field's title.
	Title string
	// Problem says what is wrong, as a phrase that follows the title.
	Problem string
	// Err is ErrRequired or ErrInvalid.
	Err error
}

// Error returns "Title: problem", the form of GroupServer's messages.
func (e *FieldError) Error() string { return e.Title + ": " + e.Problem }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// IsAuthError reports whether errs contains a token mismatch.
func IsAuthError(errs []error) bool {
	for _, err := range errs {
		if errors.Is(err, token.ErrMismatch) {
			return true
		}
	}
	return false
}
