package token

import (
	"hash/crc32"
	"testing"
)

func TestCRCStringMatchesLibrary(t *testing.T) {
	for _, s := range []string{"", "a", "gst_28LbGXHUPmon_VuPn1QN6Y8PZTCXPxxxFg8piyZp25PQn1A", "\xff\x00 mixed bytes"} {
		if got, want := crcString(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("crcString(%q) = %08x, want %08x", s, got, want)
		}
	}
}

var benchToken = "gst_28LbGXHUPmon_VuPn1QN6Y8PZTCXPxxxFg8piyZp25PQn1AzXcx"

func BenchmarkParseID(b *testing.B) {
	tok, _, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseID(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSum(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Sum(benchToken)
	}
}

func BenchmarkSetCheckHit(b *testing.B) {
	legacy, err := Generate()
	if err != nil {
		b.Fatal(err)
	}
	set := NewSet(Entry{Digest: Sum(legacy), ID: "legacy"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := set.Check(legacy); err != nil {
			b.Fatal(err)
		}
	}
}
