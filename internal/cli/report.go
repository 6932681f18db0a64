// Package cli holds the command-line programs gs_auth_token_create and
// gs-auth-token, so that their mains stay thin and tests can run them in
// process as well as from built binaries.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gs-auth-token/gs-auth-token/store"
)

// Exit statuses shared by both programs.
const (
	ExitOK = 0
	// ExitInvalid is an unusable DSN, or (for gs-auth-token) a usage error.
	ExitInvalid = 1
	// ExitFailed is a failed connection, read or write, or (for
	// gs_auth_token_create, as Python's argparse does) a usage error.
	ExitFailed = 2
)

// exitError carries an exit status and a hint along with an error.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failure classifies err by its exit status and finds its hint.
func failure(err error) *exitError {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	out := &exitError{code: ExitFailed, err: err}
	if errors.Is(err, store.ErrInvalidDSN) {
		out.code = ExitInvalid
	}
	var de *store.DSNError
	var oe *store.OpError
	switch {
	case errors.As(err, &de):
		out.hint = de.Hint
	case errors.As(err, &oe):
		out.hint = oe.Hint
	}
	return out
}

// report prints err, and its hint if any, as "PROG: error: …" and
// "PROG: hint: …" lines, with any password from dsn masked, and returns the
// exit status.
func report(w io.Writer, prog, dsn string, err error) int {
	f := failure(err)
	msg := store.ScrubPassword(f.err.Error(), dsn)
	for _, line := range strings.Split(msg, "\n") {
		fmt.Fprintf(w, "%s: error: %s\n", prog, line)
	}
	if f.hint != "" {
		fmt.Fprintf(w, "%s: hint: %s\n", prog, store.ScrubPassword(f.hint, dsn))
	}
	return f.code
}
