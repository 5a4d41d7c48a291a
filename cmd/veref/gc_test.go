package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// serve raises the collector's target only when the operator has not set
// one (GOGC or GOMEMLIMIT in the environment wins), and then bounds the
// heap softly at 80% of the memory it may use.
func TestServeTunesTheCollectorUnlessTold(t *testing.T) {
	wasGC, wasLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(wasGC); debug.SetMemoryLimit(wasLimit) })
	const gib = int64(1) << 30
	for _, tc := range []struct {
		env       map[string]string
		memory    int64
		wantGC    int
		wantLimit int64
	}{
		{env: map[string]string{}, memory: 10 * gib, wantGC: gcPercent, wantLimit: 8 * gib},
		{env: map[string]string{}, memory: 0, wantGC: gcPercent, wantLimit: math.MaxInt64},
		{env: map[string]string{"GOGC": "50"}, memory: 10 * gib, wantGC: 100, wantLimit: math.MaxInt64},
		{env: map[string]string{"GOMEMLIMIT": "1GiB"}, memory: 10 * gib, wantGC: 100, wantLimit: math.MaxInt64},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		tuneGC(func(k string) string { return tc.env[k] }, func() (int64, bool) { return tc.memory, tc.memory > 0 })
		if got := debug.SetGCPercent(100); got != tc.wantGC {
			t.Errorf("with %v the collector's target is %d, want %d", tc.env, got, tc.wantGC)
		}
		if got := debug.SetMemoryLimit(math.MaxInt64); got != tc.wantLimit {
			t.Errorf("with %v and %d bytes the memory limit is %d, want %d", tc.env, tc.memory, got, tc.wantLimit)
		}
	}
}

func TestMemoryLimitsAreRead(t *testing.T) {
	for in, want := range map[string]int64{"536870912\n": 536870912, "max\n": 0, "9223372036854771712\n": 0, "": 0, "-1": 0} {
		if got, _ := parseMemoryLimit(in); got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, want %d", in, got, want)
		}
	}
	meminfo := "MemFree:         1000 kB\nMemTotal:       24576000 kB\n"
	if got, ok := parseMemTotal(meminfo); !ok || got != 24576000<<10 {
		t.Errorf("parseMemTotal = %d, %v", got, ok)
	}
	if _, ok := parseMemTotal("nothing here"); ok {
		t.Error("parseMemTotal found a total in text without one")
	}
	// Linux has a cgroup limit or /proc/meminfo; elsewhere serve finds no
	// figure and sets no soft limit, which is what this checks there.
	if n, ok := memoryAvailable(); ok != (runtime.GOOS == "linux") || ok && n <= 0 {
		t.Errorf("memoryAvailable on %s = %d, %v", runtime.GOOS, n, ok)
	}
}
