package token

import (
	"crypto/rand"
	"fmt"
	"io"
)

// Alphabet is GroupServer's base-62 alphabet, in GroupServer's order.
const Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// LegacyLength is the length of a token made by [Generate]: 32 base-62
// characters, about 190 bits.
const LegacyLength = 32

// unbiasedLimit is the largest multiple of 62 that fits in a byte. A random
// byte below it maps to each character equally often, so bytes at or above it
// are thrown away instead of being reduced modulo 62.
const unbiasedLimit = 256 - 256%len(Alphabet)

// Generate returns a new 32-character token over [Alphabet], read from
// crypto/rand.
func Generate() (string, error) {
	return GenerateFrom(rand.Reader, LegacyLength)
}

// GenerateFrom returns an n-character string over [Alphabet] with every
// character drawn uniformly from the bytes of random. It returns an error,
// and never a shorter or weaker string, when random fails.
func GenerateFrom(random io.Reader, n int) (string, error) {
	if n <= 0 {
		return "", fmt.Errorf("token: invalid length %d: must be positive", n)
	}
	out := make([]byte, 0, n)
	// About 3% of bytes are rejected, so a buffer a little longer than n
	// usually fills the token in one read.
	buf := make([]byte, n+n/8+8)
	for len(out) < n {
		if _, err := io.ReadFull(random, buf); err != nil {
			return "", fmt.Errorf("token: reading the random source failed: %w", err)
		}
		for _, b := range buf {
			if int(b) >= unbiasedLimit {
				continue
			}
			out = append(out, Alphabet[int(b)%len(Alphabet)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}
