package auth

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
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

// BenchmarkAuthenticateWarm is verification answered by the key cache, the
// path every request of a key in use takes. It also reports the p99 of
// single verifications.
func BenchmarkAuthenticateWarm(b *testing.B) {
	h, _ := NewHasher([]byte(strings.Repeat("p", 32)))
	tok, _ := NewToken(Live)
	keys := fakeKeys{tok.Prefix: {ID: "key_1", TenantID: "acme", Prefix: tok.Prefix, Environment: Live, Hash: h.Hash(tok.String())}}
	c := NewKeyCache(0, nil)
	c.Lease(time.Now().Add(time.Hour)) // as on PostgreSQL, whose listener leases the cache
	c.SetLive(true)
	a := &Authenticator{Keys: keys, Hasher: h, Cache: c}
	ctx := context.Background()
	s := tok.String()
	if _, err := a.Authenticate(ctx, s); err != nil {
		b.Fatal(err)
	}
	var d []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := a.Authenticate(ctx, s); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}
