package store_test

import (
	"encoding/json"
	"testing"

	"github.com/verefwork/veref/store"
)

// What keeping a call's input costs every audited MCP and agent call: the
// storability scan of a typical input.
func BenchmarkAuditInput(b *testing.B) {
	raw := []byte(`{"candidate":{"name":"Dana Scully","email":"dana@example.com","role":"Staff Engineer"},"referees":[{"name":"Walter Skinner","email":"walter@example.com","relationship":"manager"}],"sendInvitations":true}`)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, enc := store.AuditInput(raw); enc != "" {
			b.Fatal(enc)
		}
	}
}

// The same input through encoding/json's validity check alone, as the
// baseline the scan is read against.
func BenchmarkAuditInputBaselineJSONValid(b *testing.B) {
	raw := []byte(`{"candidate":{"name":"Dana Scully","email":"dana@example.com","role":"Staff Engineer"},"referees":[{"name":"Walter Skinner","email":"walter@example.com","relationship":"manager"}],"sendInvitations":true}`)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if !json.Valid(raw) {
			b.Fatal("invalid")
		}
	}
}
