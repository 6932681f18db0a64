package token

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"io"
	"strings"
)

// The new token format is Prefix, a public id, an underscore, a secret and
// a checksum: "gst_" + 12 + "_" + 32 + 6 characters, 55 in all.
//
// The prefix lets secret scanners recognise a leaked token. The id names the
// token in logs, audit events and lookups, and is not secret. The secret is
// 32 base-62 characters, about 190 bits. The checksum, a CRC-32 of
// everything before it, catches a mistyped or truncated token before any
// database work.
const (
	Prefix         = "gst_"
	IDLength       = 12
	SecretLength   = 32
	ChecksumLength = 6
	// Length is the length of a token in the new format.
	Length = len(Prefix) + IDLength + 1 + SecretLength + ChecksumLength
)

// ErrFormat is the condition of a string that claims the new format, by its
// prefix, but is not a well-formed token: wrong length, a character outside
// the alphabet, or a checksum that does not match.
var ErrFormat = errors.New("malformed token")

// New returns a new token in the new format and its public id, from
// crypto/rand.
func New() (tok, id string, err error) {
	return NewFrom(rand.Reader)
}

// NewFrom returns a new token in the new format and its public id, made
// from the bytes of random. It returns an error, never a weaker token, when
// random fails.
func NewFrom(random io.Reader) (tok, id string, err error) {
	id, err = GenerateFrom(random, IDLength)
	if err != nil {
		return "", "", err
	}
	secret, err := GenerateFrom(random, SecretLength)
	if err != nil {
		return "", "", err
	}
	body := Prefix + id + "_" + secret
	return body + checksum(body), id, nil
}

// HasPrefix reports whether s claims the new format. Strings without the
// prefix are GroupServer's plain tokens.
func HasPrefix(s string) bool { return strings.HasPrefix(s, Prefix) }

// CandidateID returns the part of tok where a new-format token has its id,
// without checking anything else, or "" when tok is too short. It lets a
// cache look a token up before paying for [ParseID]'s checks.
func CandidateID(tok string) string {
	if len(tok) < len(Prefix)+IDLength {
		return ""
	}
	return tok[len(Prefix) : len(Prefix)+IDLength]
}

// ParseID checks the shape and checksum of a token in the new format and
// returns its public id. It does no I/O. Errors match [ErrFormat] and never
// contain the token.
func ParseID(tok string) (string, error) {
	if len(tok) != Length || !HasPrefix(tok) {
		return "", ErrFormat
	}
	id := tok[len(Prefix) : len(Prefix)+IDLength]
	if tok[len(Prefix)+IDLength] != '_' {
		return "", ErrFormat
	}
	rest := tok[len(Prefix)+IDLength+1:]
	if !inAlphabet(id) || !inAlphabet(rest) {
		return "", ErrFormat
	}
	sum := checksumDigits(tok[:len(tok)-ChecksumLength])
	if string(sum[:]) != tok[len(tok)-ChecksumLength:] {
		return "", ErrFormat
	}
	return id, nil
}

// crcTable is the IEEE CRC-32 table. crc32.ChecksumIEEE would need the
// string copied to a heap slice; the loop in crcString reads it in place,
// so that parsing a token allocates nothing.
var crcTable = crc32.MakeTable(crc32.IEEE)

// crcString returns the IEEE CRC-32 of s, the value crc32.ChecksumIEEE
// returns for []byte(s).
func crcString(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crcTable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// checksumDigits returns the CRC-32 of s as ChecksumLength base-62
// characters, most significant first. 62^6 exceeds 2^32, so every value
// fits.
func checksumDigits(s string) [ChecksumLength]byte {
	n := crcString(s)
	var out [ChecksumLength]byte
	for i := ChecksumLength - 1; i >= 0; i-- {
		out[i] = Alphabet[n%62]
		n /= 62
	}
	return out
}

func checksum(s string) string {
	d := checksumDigits(s)
	return string(d[:])
}

func inAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
