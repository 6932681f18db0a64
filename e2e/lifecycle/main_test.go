// Package lifecycle runs the token lifecycle as an administrator does it,
// with the built commands: create a named token, serve hooks on a loopback
// port, call them with curl, rotate, revoke, list and audit. PostgreSQL
// cases skip unless GS_AUTH_TOKEN_TEST_DSN names a server.
package lifecycle

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
