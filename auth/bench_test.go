package auth

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkParseToken is the storage-free check every request pays first.
func BenchmarkParseToken(b *testing.B) {
	tok, _ := NewToken(Live)
	s := tok.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseToken(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is parse, keyed hash and constant-time compare, with
// an in-memory lookup so only the authenticator's own cost is measured.
func BenchmarkAuthenticate(b *testing.B) {
	h, _ := NewHasher([]byte(strings.Repeat("p", 32)))
	tok, _ := NewToken(Live)
	keys := fakeKeys{tok.Prefix: {ID: "key_1", TenantID: "acme", Prefix: tok.Prefix, Environment: Live, Hash: h.Hash(tok.String())}}
	a := &Authenticator{Keys: keys, Hasher: h}
	ctx := context.Background()
	s := tok.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}
