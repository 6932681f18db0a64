// Package lifecycle runs the token lifecycle as an administrator does it,
// with the built commands: create a named token, serve hooks on a loopback
// port, call them with curl, rotate, revoke, list and audit. PostgreSQL
// cases skip unless GS_AUTH_TOKEN_TEST_DSN names a server.
package lifecycle

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
	lifecycleBinary       string // gs-auth-token
	lifecycleCreateBinary string // gs_auth_token_create
)

func TestMain(m *testing.M) {
	os.Exit(lifecycleBuildAndRun(m))
}

// lifecycleBuildAndRun builds both commands into a temporary directory,
// runs the tests and removes the directory.
func lifecycleBuildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gs-auth-token-lifecycle-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory failed: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	lifecycleBinary = filepath.Join(dir, "gs-auth-token")
	lifecycleCreateBinary = filepath.Join(dir, "gs_auth_token_create")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, b := range []struct{ out, pkg string }{
		{lifecycleBinary, "./cmd/gs-auth-token"},
		{lifecycleCreateBinary, "./cmd/gs_auth_token_create"},
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
