package store

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

// Ids keep their shape and order: kind, ten characters of milliseconds and
// four of sequence in Crockford base32, then twelve random base62; ids of
// one process sort in creation order, between IDAt of the instants around.
func TestNewIDShapeAndOrder(t *testing.T) {
	shape := regexp.MustCompile(`^use_[0-9a-hjkmnp-tv-z]{14}[0-9A-Za-z]{12}$`)
	before := time.Now()
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = NewID("use")
		if !shape.MatchString(ids[i]) {
			t.Fatalf("NewID = %q, not the id shape", ids[i])
		}
	}
	after := time.Now().Add(time.Millisecond)
	if !slices.IsSorted(ids) {
		t.Errorf("ids are not in creation order: %v", ids)
	}
	if lo, hi := IDAt("use", before), IDAt("use", after); ids[0] < lo || ids[len(ids)-1] > hi {
		t.Errorf("ids %s..%s outside IDAt range %s..%s", ids[0], ids[len(ids)-1], lo, hi)
	}
	for v, want := range map[uint64]string{0: "0000", 31: "000z", 32: "0010", 1<<20 - 1: "zzzz"} {
		if got := base32(v, 4); got != want {
			t.Errorf("base32(%d, 4) = %q, want %q", v, got, want)
		}
	}
}

// An id from NewIDAt has the time part of its at, to the millisecond, whenever it
// is made: ranges and purges of usage rows and audit events are id ranges.
func TestNewIDAtCarriesItsAt(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	a, b := NewIDAt("use", at), NewIDAt("use", at)
	if a == b {
		t.Fatalf("two usage ids of one instant are equal: %s", a)
	}
	for _, id := range []string{a, b} {
		if lo, hi := IDAt("use", at), IDAt("use", at.Add(time.Millisecond)); id < lo || id >= hi {
			t.Errorf("NewIDAt = %s, outside [%s, %s)", id, lo, hi)
		}
	}
}
