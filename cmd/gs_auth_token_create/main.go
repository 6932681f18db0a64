// Command gs_auth_token_create replaces the authentication token of the web
// hooks with a new random one and prints it. It is a drop-in for
// GroupServer's command of the same name.
//
// Usage:
//
//	gs_auth_token_create [-h] DSN
//
// Exit status: 0 the token was replaced; 1 the DSN is unusable; 2 the
// connection or the write failed, or the arguments were wrong.
package main

import (
	"os"

	"github.com/gs-auth-token/gs-auth-token/internal/cli"
)

func main() {
	os.Exit(cli.CreateLegacy(os.Args[1:], os.Stdout, os.Stderr))
}
