package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
)

// flakyAPI answers each POST with the next status of script (the last one
// from then on) and records the Idempotency-Key of every attempt.
type flakyAPI struct {
	mu     sync.Mutex
	script []int
	keys   []string
}

func (f *flakyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	status := f.script[min(len(f.keys), len(f.script))-1]
	f.mu.Unlock()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": 503, "code": "UNAVAILABLE", "title": "Service Unavailable",
			"detail": "storage is unavailable; try again shortly", "traceId": "trace-503",
			"hint": "retry after Retry-After seconds; a change may or may not have been saved, so send the same Idempotency-Key"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"id":"cand_1","name":"Dana","createdAt":"2026-12-02T08:00:00Z"}`))
}

func (f *flakyAPI) attempts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

func flakyEnv(t *testing.T, f http.Handler) map[string]string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tok, err := auth.NewToken(auth.Test)
	require.NoError(t, err)
	return map[string]string{"VEREF_API_KEY": tok.String(), "VEREF_API_URL": srv.URL}
}

func TestAMutationRetriedAfter503KeepsItsIdempotencyKey(t *testing.T) {
	api := &flakyAPI{script: []int{503, 503, 201}}
	out, errOut, code := runCLI(flakyEnv(t, api), "candidates", "create", "--name", "Dana", "-o", "json")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, 1, strings.Count(out, `"id": "cand_1"`)+strings.Count(out, `"id":"cand_1"`), "one result printed: %s", out)
	keys := api.attempts()
	require.Len(t, keys, 3)
	assert.NotEmpty(t, keys[0])
	assert.Equal(t, []string{keys[0], keys[0], keys[0]}, keys, "every attempt carries the same Idempotency-Key")
}

func TestAlways503GivesUpWithAClearError(t *testing.T) {
	api := &flakyAPI{script: []int{503}}
	_, errOut, code := runCLI(flakyEnv(t, api), "candidates", "create", "--name", "Dana", "--idempotency-key", "k-1")
	assert.NotEqual(t, 0, code)
	assert.Len(t, api.attempts(), retryTries, "bounded")
	assert.Contains(t, errOut, "UNAVAILABLE (503)")
	assert.Contains(t, errOut, "gave up after 4 attempts")
	assert.Contains(t, errOut, "--idempotency-key k-1", "says how to retry safely")
}

// A connection that fails before any answer is retried like a 503.
func TestAConnectionFailureIsRetried(t *testing.T) {
	api := &flakyAPI{script: []int{201}}
	var mu sync.Mutex
	dropped := 0
	env := flakyEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		drop := dropped == 0
		dropped++
		mu.Unlock()
		if drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
			return
		}
		api.ServeHTTP(w, r)
	}))
	_, errOut, code := runCLI(env, "candidates", "create", "--name", "Dana")
	assert.Equal(t, 0, code, errOut)
	assert.Len(t, api.attempts(), 1)
}

// Redeeming a login or revoking the key itself carries no Idempotency-Key:
// a retry after an answer lost at commit would be refused as done already,
// so the CLI would report a failure and lose the first attempt's result.
func TestAChangeWithoutAnIdempotencyKeyIsSentOnce(t *testing.T) {
	api := &flakyAPI{script: []int{503, 201}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c := &apiClient{base: srv.URL, http: srv.Client()}
	_, err := c.do(t.Context(), http.MethodPost, "/v1/cli/sessions/token", []byte(`{}`), nil)
	require.Error(t, err)
	assert.Len(t, api.attempts(), 1)
}
