package ratelimit_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/ratelimit/redistest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLocalBurstThenSteadyRate(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := ratelimit.NewLocal(c.Now)
	lim := ratelimit.Limit{Requests: 10, Window: time.Minute}
	ctx := context.Background()
	for i := range 10 {
		r := l.AllowN(ctx, "k", lim, 1)
		require.True(t, r.Allowed, "request %d of the burst", i+1)
		assert.Equal(t, 9-i, r.Remaining)
	}
	r := l.AllowN(ctx, "k", lim, 1)
	assert.False(t, r.Allowed)
	assert.Equal(t, 6*time.Second, r.RetryAfter, "one emission interval")
	assert.Equal(t, time.Minute, r.ResetAfter)
	assert.True(t, l.AllowN(ctx, "other", lim, 1).Allowed, "buckets are per key")

	peek := l.AllowN(ctx, "k", lim, 0)
	assert.False(t, peek.Allowed, "a look sees the empty bucket")
	c.Add(6 * time.Second)
	assert.True(t, l.AllowN(ctx, "k", lim, 0).Allowed)
	assert.True(t, l.AllowN(ctx, "k", lim, 1).Allowed, "one interval later, one more")
	assert.False(t, l.AllowN(ctx, "k", lim, 1).Allowed)
	c.Add(time.Minute)
	r = l.AllowN(ctx, "k", lim, 0)
	assert.True(t, r.Allowed)
	assert.Equal(t, 10, r.Remaining, "a full window later the bucket is full")
}

// Two instances sharing Redis accept, together, exactly the limit.
func TestSharedAcrossInstances(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	lim := ratelimit.Limit{Requests: 50, Window: time.Hour}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 2 {
		rdb, err := ratelimit.NewRedisClient(url)
		require.NoError(t, err)
		t.Cleanup(func() { rdb.Close() })
		inst := &ratelimit.Shared{Redis: rdb, Prefix: prefix, Local: ratelimit.NewLocal(nil), Timeout: time.Second}
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 30 {
					if inst.AllowN(context.Background(), "key_a", lim, 1).Allowed {
						accepted.Add(1)
					}
				}
			}()
		}
		t.Cleanup(func() { assert.Zero(t, inst.Fallbacks(), "Redis answered every call") })
	}
	wg.Wait()
	assert.Equal(t, int32(50), accepted.Load(), "240 attempts, one shared limit of 50")
}

// With its Redis stopped the limiter keeps deciding, in-process, counts
// each such decision, logs once, and goes back to Redis when it returns.
func TestSharedFallsBackWhenRedisStops(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := ratelimit.NewRedisClient(srv.URL)
	require.NoError(t, err)
	defer rdb.Close()
	var logs atomic.Int32
	c := &clock{t: time.Now()}
	s := &ratelimit.Shared{Redis: rdb, Prefix: redistest.Prefix(t), Local: ratelimit.NewLocal(c.Now), Now: c.Now,
		Cooldown: time.Second, LogEvery: time.Hour, Log: func(error, uint64) { logs.Add(1) }}
	lim := ratelimit.Limit{Requests: 3, Window: time.Hour}
	ctx := context.Background()
	require.True(t, s.AllowN(ctx, "k", lim, 1).Allowed)
	assert.Zero(t, s.Fallbacks())

	srv.Stop()
	var allowed int
	for range 5 {
		if s.AllowN(ctx, "k", lim, 1).Allowed {
			allowed++
		}
		c.Add(2 * time.Second) // past the cooldown: each call tries Redis again
	}
	assert.Equal(t, 3, allowed, "the in-process bucket enforces the limit meanwhile")
	assert.Equal(t, uint64(5), s.Fallbacks())
	assert.Equal(t, int32(1), logs.Load(), "logged once per interval")
}

// A Redis that accepts connections but never answers (a hung server, a
// black-holed network) costs one bounded wait, then the in-process bucket.
func TestSharedFallsBackWhenRedisHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	rdb, err := ratelimit.NewRedisClient("redis://" + ln.Addr().String() + "/0")
	require.NoError(t, err)
	defer rdb.Close()
	s := &ratelimit.Shared{Redis: rdb, Local: ratelimit.NewLocal(nil), Timeout: 50 * time.Millisecond}
	lim := ratelimit.Limit{Requests: 2, Window: time.Hour}
	got := []bool{}
	for range 3 {
		got = append(got, s.AllowN(context.Background(), "k", lim, 1).Allowed)
	}
	assert.Equal(t, []bool{true, true, false}, got)
	assert.Equal(t, uint64(3), s.Fallbacks(), "the first call timed out; the cooldown kept the next two off Redis")
}
