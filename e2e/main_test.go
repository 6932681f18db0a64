// Package e2e runs the gs-auth-token binary as its users do: it builds the
// command once, starts "gs-auth-token serve" on a loopback port over SQLite
// and PostgreSQL, and talks to it with Go, curl and Python's requests.
// PostgreSQL cases skip unless GS_AUTH_TOKEN_TEST_DSN names a server.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// binary is the path of the gs-auth-token command built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds ./cmd/gs-auth-token into a temporary directory, runs
// the tests and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gs-auth-token-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory failed: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	binary = filepath.Join(dir, "gs-auth-token")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/gs-auth-token")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gs-auth-token failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
