package store

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidDSN is the condition of a data source name that cannot be
	// used: empty, malformed, or of an unknown scheme.
	ErrInvalidDSN = errors.New("invalid DSN")
	// ErrUnavailable is the condition of a store that cannot be reached or
	// opened: a refused connection, a failed login, a missing database or
	// an unreadable file. Requests that need the store fail closed.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSchema is the condition of a database whose tables do not have the
	// shape this package expects.
	ErrSchema = errors.New("unexpected database schema")
)

// DSNError describes an unusable DSN. It matches [ErrInvalidDSN].
type DSNError struct {
	// DSN is the data source name as given. Error masks its password.
	DSN string
	// Problem is the fault, as a lowercase phrase.
	Problem string
	// Hint is the fix to suggest, or empty.
	Hint string
}

func (e *DSNError) Error() string {
	if e.DSN == "" {
		return "invalid DSN: " + e.Problem
	}
	return fmt.Sprintf("invalid DSN %q: %s", Redact(e.DSN), e.Problem)
}

// Is reports whether target is [ErrInvalidDSN].
func (e *DSNError) Is(target error) bool { return target == ErrInvalidDSN }

// OpError describes a failed operation on a store: connecting, migrating,
// reading or writing. Its message names the store by its redacted DSN and
// never contains a password.
type OpError struct {
	// Op is the operation that failed, such as "connect" or "replace token".
	Op string
	// Store is the redacted DSN of the store.
	Store string
	// Hint is the fix to suggest, or empty.
	Hint string
	// Err is the underlying error, already free of passwords.
	Err error

	unavailable bool
}

func (e *OpError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Store, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrUnavailable] and the failure was one of
// reaching or opening the store.
func (e *OpError) Is(target error) bool {
	return target == ErrUnavailable && e.unavailable
}

// scrubbedError carries a message from a driver with passwords removed,
// while keeping the driver's error reachable through errors.As for callers
// that need its code.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
