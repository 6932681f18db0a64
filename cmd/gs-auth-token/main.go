// Command gs-auth-token creates, rotates, lists, revokes and audits the
// tokens that authenticate calls to web hooks, migrates their database, and
// serves hooks. Run "gs-auth-token --help" for the subcommands.
package main

import (
	"os"

	"github.com/gs-auth-token/gs-auth-token/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
