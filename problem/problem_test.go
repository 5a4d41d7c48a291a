package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/problem"
)

func TestEveryCodeHasAStatusAndADocumentedType(t *testing.T) {
	all := problem.All()
	require.NotEmpty(t, all)
	for _, in := range all {
		assert.True(t, in.Status >= 400 && in.Status <= 599, "%s: status %d", in.Code, in.Status)
		assert.NotEmpty(t, http.StatusText(in.Status), in.Code)
		assert.NotEmpty(t, in.Meaning, in.Code)
		assert.EqualValues(t, in.Status, in.Code.Status())
		assert.Equal(t, "https://docs.veref.work/errors/"+string(in.Code), in.Code.Type())
	}
	// The codes other surfaces rely on, with the statuses clients expect.
	for code, status := range map[problem.Code]int{
		problem.RateLimited: 429, problem.IPNotAllowed: 403, problem.AuthSuspendedKey: 401,
		problem.AgentQuotaExceeded: 429, problem.UnsupportedMediaType: 415, problem.MethodNotAllowed: 405,
		problem.AuthorizationPending: 400, problem.SlowDown: 400, problem.AccessDenied: 400, problem.ExpiredToken: 400,
		problem.InvalidInput: 422, problem.ScopeMissing: 403, problem.NotFound: 404,
	} {
		assert.EqualValues(t, status, code.Status(), code)
	}
	assert.EqualValues(t, 500, problem.Code("NO_SUCH_CODE").Status(), "an unknown code is a server fault")
	assert.False(t, problem.Code("NO_SUCH_CODE").Known())
}

func TestWriteTakesTheStatusFromTheCodeAndCarriesTheTraceID(t *testing.T) {
	rec := httptest.NewRecorder()
	p := problem.New(problem.ScopeMissing, "needs candidates:read").WithHint("create a key").
		WithField("body.name", "too long")
	p.Status = 200 // a caller's mistake must not reach the wire
	p.Extensions = map[string]any{"conversationId": "conv_1"}
	problem.Write(rec, "abc123", p)

	assert.Equal(t, 403, rec.Code)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "abc123", rec.Header().Get("X-Trace-Id"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "https://docs.veref.work/errors/SCOPE_MISSING", body["type"])
	assert.Equal(t, "SCOPE_MISSING", body["code"])
	assert.Equal(t, "Forbidden", body["title"])
	assert.EqualValues(t, 403, body["status"])
	assert.Equal(t, "abc123", body["traceId"])
	assert.Equal(t, "conv_1", body["conversationId"])
	assert.Equal(t, "body.name", body["errors"].([]any)[0].(map[string]any)["location"])

	back, err := problem.Decode(rec.Body.Bytes(), rec.Code)
	require.NoError(t, err)
	assert.EqualValues(t, problem.ScopeMissing, back.Code)
	assert.Equal(t, "create a key", back.Hint)
	assert.Equal(t, "conv_1", back.Extensions["conversationId"])
	assert.Equal(t, "too long", back.Errors[0].Message)
	assert.True(t, strings.HasPrefix(back.Line(), "SCOPE_MISSING (403): needs candidates:read"), back.Line())
	assert.Contains(t, back.Line(), "[trace abc123]")
}

func TestDecodeRefusesWhatIsNotAProblem(t *testing.T) {
	for _, body := range []string{"", "<html>bad gateway</html>", `{"error":"x"}`, `[1]`, `{"code":`} {
		_, err := problem.Decode([]byte(body), 502)
		assert.ErrorIs(t, err, problem.ErrNotProblem, body)
	}
	p, err := problem.Decode([]byte(`{"code":"NOT_FOUND"}`), 404)
	require.NoError(t, err)
	assert.EqualValues(t, 404, p.Status, "the HTTP status stands in for a missing member")
}
