package token_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gs-auth-token/gs-auth-token/token"
)

func TestGenerateLengthAndAlphabet(t *testing.T) {
	for i := range 100 {
		tok, err := token.Generate()
		if err != nil {
			t.Fatalf("Generate() #%d failed: %v", i, err)
		}
		if len(tok) != token.LegacyLength {
			t.Errorf("Generate() #%d = %q, %d characters, expected %d", i, tok, len(tok), token.LegacyLength)
		}
		if bad := strings.Trim(tok, token.Alphabet); bad != "" {
			t.Errorf("Generate() #%d = %q contains %q, outside the alphabet", i, tok, bad)
		}
	}
}

func TestGenerateDistinct(t *testing.T) {
	seen := make(map[string]bool)
	for i := range 1000 {
		tok, err := token.Generate()
		if err != nil {
			t.Fatalf("Generate() #%d failed: %v", i, err)
		}
		if seen[tok] {
			t.Fatalf("Generate() #%d repeated an earlier token", i)
		}
		seen[tok] = true
	}
}

// TestGenerateChiSquare checks that the characters of Generate's tokens are
// uniform over the alphabet. The statistic over 62 characters has 61
// degrees of freedom. For that distribution P(X > 132) is about 3.8e-7 and
// P(X < 21) about 3.9e-7 (regularized incomplete gamma function, computed
// with mpmath), so a correct generator fails this test with a probability
// of about 7.7e-7. The lower bound catches output that is too even to be
// random, such as a generator that cycles through the alphabet.
func TestGenerateChiSquare(t *testing.T) {
	const (
		tokens     = 3125 // 3125 tokens of 32 characters: 100,000 characters
		lowerBound = 21.0
		upperBound = 132.0
	)
	counts := make(map[byte]int)
	for i := range tokens {
		tok, err := token.Generate()
		if err != nil {
			t.Fatalf("Generate() #%d failed: %v", i, err)
		}
		for j := 0; j < len(tok); j++ {
			counts[tok[j]]++
		}
	}

	total := tokens * token.LegacyLength
	expected := float64(total) / float64(len(token.Alphabet))
	chiSquare := 0.0
	for i := 0; i < len(token.Alphabet); i++ {
		d := float64(counts[token.Alphabet[i]]) - expected
		chiSquare += d * d / expected
	}

	if len(counts) != len(token.Alphabet) {
		t.Errorf("tokens use %d distinct characters, expected %d", len(counts), len(token.Alphabet))
	}
	if chiSquare >= upperBound {
		t.Errorf("chi-square statistic = %.1f over %d characters, expected below %.0f: the characters are not uniform", chiSquare, total, upperBound)
	}
	if chiSquare <= lowerBound {
		t.Errorf("chi-square statistic = %.1f over %d characters, expected above %.0f: the characters are too even to be random", chiSquare, total, lowerBound)
	}
}

// TestGenerateFromEveryByte feeds each byte value in order: the 248 values
// below the largest multiple of 62 must map to each character exactly four
// times, and the 8 values from 248 up must be dropped, not reduced modulo
// 62. The values repeat so that GenerateFrom's read buffer, which is longer
// than the token, can be filled.
func TestGenerateFromEveryByte(t *testing.T) {
	var all []byte
	for b := range 512 {
		all = append(all, byte(b))
	}

	got, err := token.GenerateFrom(bytes.NewReader(all), 248)
	if err != nil {
		t.Fatalf("GenerateFrom(bytes 0 to 255, 248) failed: %v", err)
	}

	want := strings.Repeat(token.Alphabet, 4)
	if got != want {
		t.Errorf("GenerateFrom(bytes 0 to 255, 248) = %q, expected the alphabet four times", got)
	}
}

func TestGenerateFromSkipsHighBytes(t *testing.T) {
	// 248 to 255 would map to "abcdefgh" if reduced modulo 62.
	input := append(bytes.Repeat([]byte{248, 255}, 20), bytes.Repeat([]byte{1}, 100)...)

	got, err := token.GenerateFrom(bytes.NewReader(input), 4)
	if err != nil {
		t.Fatalf("GenerateFrom failed: %v", err)
	}

	if got != "1111" {
		t.Errorf("GenerateFrom(high bytes then 0x01) = %q, expected %q", got, "1111")
	}
}

func TestGenerateFromShortReadsSucceed(t *testing.T) {
	input := bytes.Repeat([]byte{61}, 200)

	got, err := token.GenerateFrom(iotest.OneByteReader(bytes.NewReader(input)), token.LegacyLength)
	if err != nil {
		t.Fatalf("GenerateFrom(one byte per read) failed: %v", err)
	}

	if want := strings.Repeat("Z", token.LegacyLength); got != want {
		t.Errorf("GenerateFrom(one byte per read) = %q, expected %q", got, want)
	}
}

var errSource = errors.New("random source broken")

func TestGenerateFromFailingReader(t *testing.T) {
	tests := []struct {
		name    string
		random  io.Reader
		wantErr error
	}{
		{"error at once", iotest.ErrReader(errSource), errSource},
		{"error after data", io.MultiReader(bytes.NewReader(make([]byte, 10)), iotest.ErrReader(errSource)), errSource},
		{"empty", bytes.NewReader(nil), io.EOF},
		{"short reads then EOF", iotest.HalfReader(bytes.NewReader(make([]byte, 20))), io.ErrUnexpectedEOF},
		{"one byte reads then EOF", iotest.OneByteReader(bytes.NewReader(make([]byte, 31))), io.ErrUnexpectedEOF},
		{"only rejected bytes", bytes.NewReader(bytes.Repeat([]byte{0xff}, 1000)), io.ErrUnexpectedEOF},
		{"timeout", iotest.TimeoutReader(bytes.NewReader(make([]byte, 10))), iotest.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := token.GenerateFrom(tt.random, token.LegacyLength)

			if err == nil {
				t.Fatalf("GenerateFrom = %q, nil; expected an error", got)
			}
			if got != "" {
				t.Errorf("GenerateFrom returned %q with its error, expected no token", got)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("GenerateFrom error = %v, expected it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestGenerateFromInvalidLength(t *testing.T) {
	for _, n := range []int{0, -1, -32} {
		got, err := token.GenerateFrom(bytes.NewReader(make([]byte, 100)), n)

		if err == nil {
			t.Errorf("GenerateFrom(n=%d) = %q, nil; expected an error", n, got)
		}
		if got != "" {
			t.Errorf("GenerateFrom(n=%d) returned %q, expected no token", n, got)
		}
	}
}
