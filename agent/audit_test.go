package agent_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store/storetest"
)

// A model's tool calls with arguments a backend cannot store as sent (NUL,
// lone surrogates, text that is not JSON) and names it cannot either:
// every call has its audit row, with and without the scope it needs, on
// every backend. (Invalid UTF-8 cannot reach the agent: OpenRouter's JSON
// reply is decoded before the arguments are seen.)
func TestHostileToolCallsAreAuditedOncePerCall(t *testing.T) {
	calls := []fakeCall{
		{"c1", "candidates_create", `{"name":"A\u0000B"}`},
		{"c2", "candidates_create", `{"na\u0000me":"A"}`},
		{"c3", "candidates_create", `{"name":"Bob\ud800"}`},
		{"c4", "candidates_create", `{"name":"\udc00Bob","email":"x\u0000"}`},
		{"c5", "candidates_create", `{"name":`},
		{"c6", "who\u0000ami", `{"x":"\u0000"}`},
		{"c7", "whoami\xff", `{}`},
	}
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarnessOn(t, b.Open(t), withKey(agent.Config{}), func(n int, req captured) (int, any) {
				if n%2 == 0 {
					return 200, toolCallsReply(modelPro, nil, calls...)
				}
				return 200, answerReply(modelPro, "done")
			})
			for _, scopes := range [][]auth.Scope{nil, {auth.CandidatesRead}} {
				key := h.Key("acme", auth.Test, scopes...)
				res, out := h.ask(key, map[string]any{"message": "make trouble"})
				require.EqualValues(t, http.StatusOK, res.Status, string(res.Body))
				require.Len(t, out.ToolCalls, len(calls))
				rows := h.audit(t, key)
				assert.Len(t, rows, len(calls), "scopes %v: one audit row per call", scopes)
				byID := map[string]bool{}
				for _, r := range rows {
					byID[r.ID] = true
					assert.NotEmpty(t, storetest.AuditedInput(t, r.Data), "%s keeps its arguments", r.Action)
				}
				for _, tc := range out.ToolCalls {
					assert.True(t, byID[tc.AuditEventID], "%s (%s): its audit id names its row", tc.Name, tc.Outcome)
					assert.NotEqual(t, "ok", tc.Outcome, "%s %s: refused, not run with its text changed", tc.Name, tc.Arguments)
				}
			}
		})
	}
}
