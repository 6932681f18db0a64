// Package testbin builds the project's commands for tests that run them as
// subprocesses, as users do.
package testbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binaries are the paths of the built commands.
type Binaries struct {
	// Tool is gs-auth-token.
	Tool string
	// Create is gs_auth_token_create.
	Create string
}

// Main builds both commands into a temporary directory, runs the tests
// with bins set, removes the directory and returns the exit status for
// os.Exit. A failed build fails the run.
func Main(m *testing.M, bins *Binaries) int {
	dir, err := os.MkdirTemp("", "gs-auth-token-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "creating a temporary directory failed: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := moduleRoot(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bins.Tool = filepath.Join(dir, "gs-auth-token")
	bins.Create = filepath.Join(dir, "gs_auth_token_create")
	for _, b := range []struct{ out, pkg string }{
		{bins.Tool, "./cmd/gs-auth-token"},
		{bins.Create, "./cmd/gs_auth_token_create"},
	} {
		build := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s failed: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// moduleRoot returns the directory of the main module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module with 'go env GOMOD' failed: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("the tests are not running inside the module")
	}
	return filepath.Dir(gomod), nil
}

// Result is the outcome of a command run by [Run].
type Result struct {
	// Code is the exit status.
	Code int
	// Stdout and Stderr are what the command wrote.
	Stdout, Stderr string
}

// Run runs bin with args in dir, for at most a minute. Its environment is
// the test's without PG*, GS_AUTH_TOKEN_* and HOME variables, so that
// nothing of the developer's setup (such as ~/.pgpass) leaks in, with a
// HOME of its own, and then extraEnv.
func Run(t testing.TB, bin, dir string, extraEnv []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "GS_AUTH_TOKEN_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(append(env, "HOME="+t.TempDir()), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	default:
		t.Fatalf("running %s failed: %v", bin, err)
	}
	return res
}
