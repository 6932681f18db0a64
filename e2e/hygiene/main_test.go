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
	"os"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
)

// bins holds the paths of the commands that TestMain builds.
var bins testbin.Binaries

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &bins))
}
