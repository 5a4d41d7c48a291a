package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/store/postgres"
)

// logLines are the lines of log whose message starts with msg.
func logLines(t *testing.T, log string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if s, _ := m["message"].(string); strings.HasPrefix(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// concurrently makes n requests at once and returns their statuses.
func concurrently(t *testing.T, n int, do func() apitest.Response) []int {
	t.Helper()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = answered(t, do).Status }()
	}
	wg.Wait()
	return statuses
}

// A database that stops answering fails every request the same way; the
// log says so once, then counts, instead of one error line per request
// (a 9-second outage once wrote 21,608 of them). The access log still has
// a line per request, with its trace id.
func TestAStorageFaultIsLoggedOnceThenCounted(t *testing.T) {
	const n = 20
	st, proxy, dsn := stalledPostgres(t, 300*time.Millisecond)
	var at atomic.Int64 // the de-duplicator's clock, moved by hand: no test waits
	repeats := logdedup.New(10*time.Second, func() time.Time { return time.Unix(0, at.Load()) })
	var log syncBuffer
	e := apitest.New(t, st, apitest.Options{AuthTimeout: 200 * time.Millisecond, NoKeyCache: true, Log: &log, Repeats: repeats})
	e.Tenant("acme")
	key := e.Key("acme", auth.Test)
	direct, err := postgres.Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = direct.Close() })
	ops := apitest.New(t, keysElsewhere{Store: st, keys: direct}, apitest.Options{NoKeyCache: true, Log: &log, Repeats: repeats})

	proxy.Stall()
	t.Cleanup(proxy.Resume) // before the servers flush their usage rows
	for _, s := range concurrently(t, n, func() apitest.Response { return e.Do("GET", "/v1/api/candidates", key, nil) }) {
		require.Equal(t, 503, s)
	}
	for _, s := range concurrently(t, n, func() apitest.Response { return ops.Do("GET", "/v1/api/candidates", key, nil) }) {
		require.Equal(t, 503, s)
	}

	for _, msg := range []string{"authentication unavailable", "operation failed"} {
		got := logLines(t, log.String(), msg)
		require.Len(t, got, 1, "%s: %d identical failures, one line", msg, n)
		assert.Equal(t, "error", got[0]["level"])
		assert.NotEmpty(t, got[0]["trace_id"])
		assert.NotEmpty(t, got[0]["error"])
	}
	at.Add(int64(10 * time.Second))
	repeats.Flush()
	for _, msg := range []string{"authentication unavailable", "operation failed"} {
		got := logLines(t, log.String(), msg)
		require.Len(t, got, 2, msg)
		assert.EqualValues(t, n-1, got[1]["repeated"], "then one line counting the rest: %v", got[1]["message"])
	}
	assert.Len(t, logLines(t, log.String(), "request"), 2*n, "the access log keeps every request")
}
