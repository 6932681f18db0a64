package token_test

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// lifecycleChecksum computes the checksum of a new-format token body as the
// format documents it, independently of the package: the CRC-32 (IEEE) of
// the body as six base-62 digits, most significant first.
func lifecycleChecksum(body string) string {
	n := crc32.ChecksumIEEE([]byte(body))
	out := make([]byte, token.ChecksumLength)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = token.Alphabet[n%62]
		n /= 62
	}
	return string(out)
}

// lifecycleForge returns prefix + id + "_" + secret followed by the checksum
// of all that, so that a test can build a token whose only fault is the one
// it puts in.
func lifecycleForge(prefix, id, secret string) string {
	body := prefix + id + "_" + secret
	return body + lifecycleChecksum(body)
}

// lifecycleFixedToken returns the token that NewFrom makes from a source of
// zero bytes, which is the same on every run.
func lifecycleFixedToken(t testing.TB) (string, string) {
	t.Helper()
	tok, id, err := token.NewFrom(bytes.NewReader(make([]byte, 4096)))
	if err != nil {
		t.Fatalf("NewFrom(zero bytes) failed: %v", err)
	}
	return tok, id
}

func TestNewTokenShape(t *testing.T) {
	const secretStart = len(token.Prefix) + token.IDLength + 1
	seen := make(map[string]bool)
	for i := range 200 {
		tok, id, err := token.New()
		if err != nil {
			t.Fatalf("New() #%d failed: %v", i, err)
		}

		if len(tok) != 55 || token.Length != 55 {
			t.Fatalf("New() #%d = %d characters (Length %d), expected 55", i, len(tok), token.Length)
		}
		if !strings.HasPrefix(tok, "gst_") {
			t.Errorf("New() #%d = %q does not start with gst_", i, tok)
		}
		if got := tok[4:16]; got != id {
			t.Errorf("New() #%d id = %q, expected the 12 characters after the prefix, %q", i, id, got)
		}
		if tok[16] != '_' {
			t.Errorf("New() #%d = %q has %q at byte 16, expected '_'", i, tok, tok[16])
		}
		if bad := strings.Trim(id, token.Alphabet); bad != "" {
			t.Errorf("New() #%d id %q contains %q, outside the alphabet", i, id, bad)
		}
		if bad := strings.Trim(tok[secretStart:], token.Alphabet); bad != "" {
			t.Errorf("New() #%d secret and checksum contain %q, outside the alphabet", i, bad)
		}
		body := tok[:len(tok)-token.ChecksumLength]
		if got, want := tok[len(tok)-token.ChecksumLength:], lifecycleChecksum(body); got != want {
			t.Errorf("New() #%d checksum = %q, expected the CRC-32 of the body, %q", i, got, want)
		}
		if err := token.Validate(tok); err != nil {
			t.Errorf("Validate(New() #%d) = %v, expected nil", i, err)
		}
		if seen[tok] || seen[id] {
			t.Fatalf("New() #%d repeated an earlier token or id", i)
		}
		seen[tok], seen[id] = true, true
	}
}

func TestNewTokenParses(t *testing.T) {
	for i := range 100 {
		tok, id, err := token.New()
		if err != nil {
			t.Fatalf("New() #%d failed: %v", i, err)
		}

		got, err := token.ParseID(tok)

		if err != nil {
			t.Fatalf("ParseID(New() #%d) failed: %v", i, err)
		}
		if got != id {
			t.Errorf("ParseID(New() #%d) = %q, expected %q", i, got, id)
		}
		if !token.HasPrefix(tok) {
			t.Errorf("HasPrefix(New() #%d) = false, expected true", i)
		}
	}
}

func TestNewFromUsesReader(t *testing.T) {
	tok, id := lifecycleFixedToken(t)

	if want := strings.Repeat("0", token.IDLength); id != want {
		t.Errorf("NewFrom(zero bytes) id = %q, expected %q", id, want)
	}
	if want := lifecycleForge("gst_", id, strings.Repeat("0", token.SecretLength)); tok != want {
		t.Errorf("NewFrom(zero bytes) = %q, expected %q", tok, want)
	}
}

func TestNewFromFailingReader(t *testing.T) {
	errBroken := errors.New("random source broken")
	tests := []struct {
		name    string
		random  io.Reader
		wantErr error
	}{
		{"error at once", iotest.ErrReader(errBroken), errBroken},
		{"empty", bytes.NewReader(nil), io.EOF},
		{"enough for the id only", io.MultiReader(bytes.NewReader(make([]byte, 30)), iotest.ErrReader(errBroken)), errBroken},
		{"short then EOF", bytes.NewReader(make([]byte, 30)), io.ErrUnexpectedEOF},
		{"only rejected bytes", bytes.NewReader(bytes.Repeat([]byte{0xff}, 4096)), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, id, err := token.NewFrom(tt.random)

			if err == nil {
				t.Fatalf("NewFrom = %q, %q, nil; expected an error", tok, id)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("NewFrom error = %v, expected it to wrap %v", err, tt.wantErr)
			}
			if tok != "" {
				t.Errorf("NewFrom returned token %q with its error, expected none", tok)
			}
			if id != "" {
				t.Errorf("NewFrom returned id %q with its error, expected none", id)
			}
		})
	}
}

// lifecycleRejected asserts that ParseID rejects tok with ErrFormat, returns
// no id, and leaves tok out of its message.
func lifecycleRejected(t *testing.T, tok string) {
	t.Helper()
	id, err := token.ParseID(tok)
	if err == nil {
		t.Fatalf("ParseID(%q) = %q, nil; expected ErrFormat", tok, id)
	}
	if !errors.Is(err, token.ErrFormat) {
		t.Errorf("ParseID(%q) error = %v, expected it to match ErrFormat", tok, err)
	}
	if id != "" {
		t.Errorf("ParseID(%q) returned id %q with its error, expected none", tok, id)
	}
	if len(tok) > 8 && strings.Contains(err.Error(), tok) {
		t.Errorf("ParseID(%q) error %q contains the token", tok, err)
	}
}

// TestParseIDRejectsEveryCharChange replaces each character of a valid
// token with every other byte value. The CRC-32 detects every error within
// 32 consecutive bits, so no single changed byte may pass.
func TestParseIDRejectsEveryCharChange(t *testing.T) {
	tok, _ := lifecycleFixedToken(t)
	other, _, err := token.New()
	if err != nil {
		t.Fatalf("New() failed: %v", err)
	}
	for _, base := range []string{tok, other} {
		for i := 0; i < len(base); i++ {
			for c := 0; c < 256; c++ {
				if byte(c) == base[i] {
					continue
				}
				changed := base[:i] + string([]byte{byte(c)}) + base[i+1:]
				if id, err := token.ParseID(changed); err == nil {
					t.Errorf("ParseID accepted %q, byte %d changed to %#x, as id %q", changed, i, c, id)
				}
			}
		}
	}
}

func TestParseIDRejectsSwaps(t *testing.T) {
	tok, _ := lifecycleFixedToken(t)
	other, _, err := token.New()
	if err != nil {
		t.Fatalf("New() failed: %v", err)
	}
	for _, base := range []string{tok, other} {
		for i := 0; i+1 < len(base); i++ {
			if base[i] == base[i+1] {
				continue
			}
			b := []byte(base)
			b[i], b[i+1] = b[i+1], b[i]
			if id, err := token.ParseID(string(b)); err == nil {
				t.Errorf("ParseID accepted %q, bytes %d and %d swapped, as id %q", b, i, i+1, id)
			}
		}
	}
}

func TestParseIDRejectsMalformed(t *testing.T) {
	tok, id := lifecycleFixedToken(t)
	secret := strings.Repeat("0", token.SecretLength)
	tests := []struct {
		name string
		tok  string
	}{
		{"empty", ""},
		{"prefix only", "gst_"},
		{"one char short", tok[:len(tok)-1]},
		{"one char long", tok + "0"},
		{"checksum missing", tok[:len(tok)-token.ChecksumLength]},
		{"doubled", tok + tok},
		{"legacy token", "k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i"},
		{"trailing newline", tok + "\n"},
		{"leading space", " " + tok[1:]},
		{"upper case prefix", lifecycleForge("GST_", id, secret)},
		{"other prefix", lifecycleForge("ghp_", id, secret)},
		{"no prefix", lifecycleForge("", id+"abcd", secret)},
		{"short id", lifecycleForge("gst_", id[1:], secret+"0")},
		{"long id", lifecycleForge("gst_", id+"0", secret[1:])},
		{"hyphen in id", lifecycleForge("gst_", "-"+id[1:], secret)},
		{"underscore in id", lifecycleForge("gst_", "_"+id[1:], secret)},
		{"hyphen in secret", lifecycleForge("gst_", id, secret[1:]+"-")},
		{"underscore in secret", lifecycleForge("gst_", id, "_"+secret[1:])},
		{"space in secret", lifecycleForge("gst_", id, secret[1:]+" ")},
		{"non-ASCII in secret", lifecycleForge("gst_", id, secret[2:]+"é")},
		{"NUL in secret", lifecycleForge("gst_", id, secret[1:]+"\x00")},
		{"separator not underscore", func() string {
			body := "gst_" + id + "0" + secret
			return body + lifecycleChecksum(body)
		}()},
		{"checksum of another body", tok[:len(tok)-token.ChecksumLength] + lifecycleChecksum("gst_"+id+"_"+secret[1:]+"1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lifecycleRejected(t, tt.tok)
		})
	}
}

// TestLifecycleForgeMatchesFormat guards the forged cases above: a forged
// token without a fault must parse, or those cases prove nothing.
func TestLifecycleForgeMatchesFormat(t *testing.T) {
	_, id := lifecycleFixedToken(t)
	forged := lifecycleForge("gst_", id, strings.Repeat("Z", token.SecretLength))

	got, err := token.ParseID(forged)

	if err != nil {
		t.Fatalf("ParseID(forged valid token) failed: %v", err)
	}
	if got != id {
		t.Errorf("ParseID(forged valid token) = %q, expected %q", got, id)
	}
}

func TestHasPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"gst_", true},
		{"gst_anything", true},
		{"GST_abc", false},
		{"gst", false},
		{"", false},
		{"k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := token.HasPrefix(tt.in); got != tt.want {
				t.Errorf("HasPrefix(%q) = %v, expected %v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseID checks that ParseID never panics, that it rejects only with
// ErrFormat, and that an accepted token is well formed and returns the id
// it carries. The seed corpus is in testdata/fuzz/FuzzParseID.
func FuzzParseID(f *testing.F) {
	tok, _ := lifecycleFixedToken(f)
	f.Add(tok)
	f.Add(tok[:len(tok)-1] + "1")
	f.Add("gst_")

	f.Fuzz(func(t *testing.T, in string) {
		id, err := token.ParseID(in)
		if err != nil {
			if !errors.Is(err, token.ErrFormat) {
				t.Errorf("ParseID(%q) error = %v, expected it to match ErrFormat", in, err)
			}
			if id != "" {
				t.Errorf("ParseID(%q) returned id %q with its error", in, id)
			}
			return
		}

		if len(in) != token.Length {
			t.Fatalf("ParseID accepted %q of length %d, expected %d", in, len(in), token.Length)
		}
		if !token.HasPrefix(in) {
			t.Errorf("ParseID accepted %q without the prefix", in)
		}
		if id != in[len(token.Prefix):len(token.Prefix)+token.IDLength] {
			t.Errorf("ParseID(%q) = %q, expected the id after the prefix", in, id)
		}
		secret := in[len(token.Prefix)+token.IDLength+1 : len(in)-token.ChecksumLength]
		if rebuilt := lifecycleForge(token.Prefix, id, secret); rebuilt != in {
			t.Errorf("ParseID accepted %q, but its id and secret make %q", in, rebuilt)
		}
		if err := token.Validate(in); err != nil {
			t.Errorf("ParseID accepted %q, which Validate rejects: %v", in, err)
		}
	})
}
