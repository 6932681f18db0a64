// Package hygiene drives the failure paths of the built commands and checks
// that no secret leaks out of them. The secrets are the tokens presented
// (valid, wrong, revoked or expired), their hex SHA-256 digests, the
// digests read from the gs_auth_token table and the password of the DSN.
// None may appear in a log line of serve, an HTTP body or header, an audit
// row, or the output of a command.
//
// The cases run on SQLite and on PostgreSQL where they apply. PostgreSQL
// cases skip unless GS_AUTH_TOKEN_TEST_DSN names a server; they put a
// password in the DSN, which a server with trust authentication ignores.
package hygiene

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Paths of the commands that TestMain builds.
var (
	binary       string // gs-auth-token
	createBinary string // gs_auth_token_create
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds both commands into a temporary directory, runs the
// tests and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gs-auth-token-hygiene-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory failed: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	binary = filepath.Join(dir, "gs-auth-token")
	createBinary = filepath.Join(dir, "gs_auth_token_create")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, b := range []struct{ out, pkg string }{
		{binary, "./cmd/gs-auth-token"},
		{createBinary, "./cmd/gs_auth_token_create"},
	} {
		build := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s failed: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}
