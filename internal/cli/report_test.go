package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/store"
)

const canary = "s3cr3t-canary"

func TestFailureExitStatus(t *testing.T) {
	dsnErr := &store.DSNError{DSN: "mysql://x", Problem: `unknown scheme "mysql"`, Hint: "use postgresql://"}
	opErr := &store.OpError{Op: "connect to", Store: "postgres://127.0.0.1/gs", Hint: "check the host", Err: errors.New("refused")}
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantHint string
	}{
		{"DSN error", dsnErr, ExitInvalid, "use postgresql://"},
		{"wrapped DSN error", fmt.Errorf("opening: %w", dsnErr), ExitInvalid, "use postgresql://"},
		{"store error", opErr, ExitFailed, "check the host"},
		{"wrapped store error", fmt.Errorf("opening: %w", opErr), ExitFailed, "check the host"},
		{"exit error", &exitError{code: ExitInvalid, err: errors.New("bad"), hint: "do this"}, ExitInvalid, "do this"},
		{"plain error", errors.New("boom"), ExitFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := failure(tt.err)

			if f.code != tt.wantCode {
				t.Errorf("failure(%v) code = %d, expected %d", tt.err, f.code, tt.wantCode)
			}
			if f.hint != tt.wantHint {
				t.Errorf("failure(%v) hint = %q, expected %q", tt.err, f.hint, tt.wantHint)
			}
		})
	}
}

func TestReportFormat(t *testing.T) {
	var out bytes.Buffer
	err := &exitError{code: ExitFailed, err: errors.New("first line\nsecond line"), hint: "try again"}

	code := report(&out, "prog", "sqlite:tokens.db", err)

	if code != ExitFailed {
		t.Errorf("report returned %d, expected %d", code, ExitFailed)
	}
	want := "prog: error: first line\nprog: error: second line\nprog: hint: try again\n"
	if out.String() != want {
		t.Errorf("report wrote\n%q\nexpected\n%q", out.String(), want)
	}
}

func TestReportScrubsPassword(t *testing.T) {
	tests := []struct {
		name       string
		dsn        string
		pgpassword string
	}{
		{"password in DSN", "postgres://gs:" + canary + "@127.0.0.1/gs", ""},
		{"password in PGPASSWORD", "postgres://gs@127.0.0.1/gs", canary},
		{"password parameter", "postgres://gs@127.0.0.1/gs?password=" + canary, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", tt.pgpassword)
			var out bytes.Buffer
			err := &exitError{code: ExitFailed, err: errors.New("login as gs with " + canary + " failed"), hint: "not " + canary}

			report(&out, "prog", tt.dsn, err)

			if strings.Contains(out.String(), canary) {
				t.Errorf("report wrote the password:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "prog: error: login as gs with xxxxx failed") {
				t.Errorf("report did not write the masked error:\n%s", out.String())
			}
		})
	}
}
