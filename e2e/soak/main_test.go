// Package soak runs the built gs-auth-token serve under mixed load against
// PostgreSQL through a proxy that the test cuts and restores. Several
// clients send valid tokens of two named clients, wrong tokens and a
// revoked token. One client's token is rotated every 10 seconds with
// "gs-auth-token rotate --grace 2s", and the proxy is cut for about 3
// seconds in the middle of the run. The test counts every response. No
// wrong or revoked token may be accepted, and no valid token rejected
// outside the fail-closed window. Every 401 must be in the audit trail
// exactly once, and the server's resident memory must stay flat.
//
// The traffic runs for 30 seconds by default. GS_AUTH_TOKEN_SOAK sets
// another duration, as a Go duration of at least 15s; give go test a
// timeout to match:
//
//	GS_AUTH_TOKEN_SOAK=10m GS_AUTH_TOKEN_TEST_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//		go test -count=1 -timeout 30m -v ./e2e/soak/
//
// The test skips unless GS_AUTH_TOKEN_TEST_DSN names a PostgreSQL server,
// and with -short.
package soak

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
	dir, err := os.MkdirTemp("", "gs-auth-token-soak-")
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
