package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// shot is one request of a fault run and what became of it.
type shot struct {
	kind    string // me, post, mcp
	traceID string // sent in traceparent, so rows match requests even unanswered
	status  int    // 0: no answer (refused, reset, timed out)
	// toolError: an MCP call answered 200 with a tool error (isError),
	// as MCP reports a failed operation.
	toolError bool
	at        time.Time // when it was sent
	latency   time.Duration
}

// faultLoad drives a server whose address stays the same across
// restarts. Every connection sends one kind of request, again and again:
// GET /v1/api/me (a usage row), POST /v1/api/candidates (a mutation and
// its audit row in the same transaction) and an MCP tools/call (a read
// whose audit row is batched).
type faultLoad struct {
	base  string
	b     *backend
	conns int

	mu    sync.Mutex
	shots []shot
	seq   int
}

func traceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (l *faultLoad) request(kind string) request {
	switch kind {
	case "post":
		l.mu.Lock()
		l.seq++
		n := l.seq
		l.mu.Unlock()
		h := bearer(l.b.key["rest"])
		h["Content-Type"] = "application/json"
		h["Idempotency-Key"] = "fault-" + traceID()
		return request{url: l.base + "/v1/api/candidates", method: "POST", body: fmt.Sprintf(`{"name":"Fault load %d"}`, n), headers: h}
	case "mcp":
		h := bearer(l.b.key["mcp"])
		h["Content-Type"] = "application/json"
		h["Accept"] = "application/json, text/event-stream"
		return request{url: l.base + "/v1/api/mcp", method: "POST", body: mcpCall, headers: h}
	default:
		return request{url: l.base + "/v1/api/me", headers: bearer(l.b.key["me"])}
	}
}

// run loads until ctx ends. A request cut off by the end of the run is
// not counted: neither answered nor refused.
func (l *faultLoad) run(ctx context.Context) {
	kinds := []string{"me", "post", "mcp"}
	var wg sync.WaitGroup
	for i := range l.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			kind := kinds[i%len(kinds)]
			for ctx.Err() == nil {
				r := l.request(kind)
				id := traceID()
				r.headers["traceparent"] = "00-" + id + "-" + id[:16] + "-01"
				t0 := time.Now()
				status, body, err := exchange(ctx, c, r, kind == "mcp")
				if ctx.Err() != nil {
					return
				}
				s := shot{kind: kind, traceID: id, status: status, at: t0, latency: time.Since(t0),
					toolError: bytes.Contains(body, []byte(`"isError":true`))}
				if err != nil {
					s.status = 0
				}
				l.mu.Lock()
				l.shots = append(l.shots, s)
				l.mu.Unlock()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					// Refused while the server restarts: do not spin.
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}
	wg.Wait()
}

// summary is the answers by status and the latency of those answered.
func summarize(shots []shot) string {
	byStatus := map[int]int{}
	var lat []time.Duration
	for _, s := range shots {
		byStatus[s.status]++
		if s.status != 0 {
			lat = append(lat, s.latency)
		}
	}
	codes := make([]int, 0, len(byStatus))
	for c := range byStatus {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, byStatus[c]))
	}
	out := fmt.Sprintf("%d requests; %s", len(shots), strings.Join(parts, ", "))
	if len(lat) > 0 {
		slices.Sort(lat)
		r := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
		out += fmt.Sprintf("; answered p50 %s, p99 %s, max %s", r(lat[len(lat)/2]), r(lat[len(lat)*99/100]), r(lat[len(lat)-1]))
	}
	return out
}
