package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A panic on a route outside the guard (key management, the console, CLI
// sessions, public links) is answered as a 500 problem and never reaches
// net/http, whose own panic log names the client's raw address.
func TestPanicOutsideTheGuardIsAProblem(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tenants/{tenant}/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	h := accessLog(zerolog.New(&logs), time.Now, true, mux)

	req := httptest.NewRequest("POST", "/v1/tenants/acme/boom", nil)
	req.RemoteAddr = "198.51.100.7:4321"
	rec := httptest.NewRecorder()
	require.NotPanics(t, func() { h.ServeHTTP(rec, req) })

	assert.Equal(t, 500, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var body struct{ Code, TraceID string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "INTERNAL", body.Code)
	assert.NotEmpty(t, body.TraceID)
	assert.Equal(t, body.TraceID, rec.Header().Get("X-Trace-Id"))
	assert.Contains(t, logs.String(), "handler panicked")
	assert.NotContains(t, logs.String(), "198.51.100.7")
}
