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
	"os"
	"testing"

	"github.com/gs-auth-token/gs-auth-token/internal/testbin"
)

// bins holds the paths of the commands that TestMain builds.
var bins testbin.Binaries

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, &bins))
}
