package cli

import (
	"bytes"
	"io"
	"strings"

	"github.com/gs-auth-token/gs-auth-token/store"
)

// minSecret is the shortest password that output is scrubbed of. Masking
// every occurrence of a one- or two-letter password would garble the
// output, and such a password protects nothing anyway.
const minSecret = 4

// secretsIn returns the passwords carried by the arguments, by an
// argument's value after "=" (as in --dsn=URL), and by the environment
// variables that may hold a DSN or a password.
func secretsIn(args []string, getenv func(string) string) [][]byte {
	var candidates []string
	for _, a := range args {
		candidates = append(candidates, a)
		if _, v, ok := strings.Cut(a, "="); ok {
			candidates = append(candidates, v)
		}
	}
	candidates = append(candidates, getenv(DSNEnv))
	var out [][]byte
	for _, c := range candidates {
		for _, pw := range store.PasswordsOf(c) {
			if len(pw) >= minSecret {
				out = append(out, []byte(pw))
			}
		}
	}
	if pw := getenv("PGPASSWORD"); len(pw) >= minSecret {
		out = append(out, []byte(pw))
	}
	return out
}

// scrubWriter masks passwords in everything written through it, so that
// a DSN given where another argument belongs, and quoted back in an error,
// does not show its password.
type scrubWriter struct {
	w       io.Writer
	secrets [][]byte
}

func newScrubWriter(w io.Writer, secrets [][]byte) io.Writer {
	if len(secrets) == 0 {
		return w
	}
	return &scrubWriter{w: w, secrets: secrets}
}

func (s *scrubWriter) Write(p []byte) (int, error) {
	out := p
	for _, secret := range s.secrets {
		out = bytes.ReplaceAll(out, secret, []byte("xxxxx"))
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
