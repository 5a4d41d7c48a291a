package main

import (
	"runtime/debug"
	"testing"
)

// serve raises the collector's target only when the operator has not set
// one: GOGC or GOMEMLIMIT in the environment wins.
func TestServeTunesTheCollectorUnlessTold(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{env: map[string]string{}, want: gcPercent},
		{env: map[string]string{"GOGC": "50"}, want: 100},
		{env: map[string]string{"GOMEMLIMIT": "1GiB"}, want: 100},
	} {
		debug.SetGCPercent(100)
		tuneGC(func(k string) string { return tc.env[k] })
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("with %v the collector's target is %d, want %d", tc.env, got, tc.want)
		}
	}
}
