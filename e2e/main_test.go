// Package e2e runs the gs-auth-token bins.Tool as its users do: it builds the
// command once, starts "gs-auth-token serve" on a loopback port over SQLite
// and PostgreSQL, and talks to it with Go, curl and Python's requests.
// PostgreSQL cases skip unless GS_AUTH_TOKEN_TEST_DSN names a server.
package e2e

import (
	"os"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
)

// bins holds the paths of the commands that TestMain builds.
var bins testbin.Binaries

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &bins))
}
