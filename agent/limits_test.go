package agent_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// budgetHarness is a server whose agent charges each key's daily token
// budget from the usage the local OpenRouter reports, as serve does.
func budgetHarness(t *testing.T, now func() time.Time) *harness {
	st := storetest.OpenSQLite(t)
	fake := newFakeOpenRouter(t, func(n int, req captured) (int, any) {
		if len(req.toolMessages()) == 0 {
			return 200, toolCallsReply(modelPro, nil, fakeCall{"c1", "whoami", "{}"})
		}
		return 200, answerReply(modelPro, "You are acme.")
	})
	budget := &quota.AgentTokens{Store: st, Now: now}
	cfg := withKey(agent.Config{BaseURL: fake.URL(), Models: []string{modelPro}, Now: now})
	cfg.OnUsage = func(ctx context.Context, tokens int) {
		p, _ := auth.FromContext(ctx)
		require.NoError(t, budget.Charge(context.WithoutCancel(ctx), p.KeyID, tokens))
	}
	env := apitest.New(t, st, apitest.Options{Now: now, Limits: api.Limits{AgentTokens: budget},
		Agent: func(reg *tools.Registry) http.Handler { return agent.NewHandler(reg, st, cfg) }})
	env.Tenant("acme")
	return &harness{Env: env, fake: fake}
}

func TestDailyTokenBudgetRefusesUntilMidnight(t *testing.T) {
	var offset atomic.Int64
	base := time.Date(2026, 3, 4, 22, 0, 0, 0, time.UTC)
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	h := budgetHarness(t, now)
	daily := int64(300) // each run costs two model calls of 120 tokens
	key := h.KeyWith("acme", auth.Test, api.LimitsChange{AgentDailyTokens: &daily})

	for i := range 2 {
		res, out := h.ask(key, map[string]any{"message": "who am I?"})
		require.Equal(t, http.StatusOK, res.Status, "run %d: %s", i+1, res.Body)
		assert.Equal(t, 240, out.Usage.PromptTokens+out.Usage.CompletionTokens)
	}
	calls := len(h.fake.Requests())
	res, _ := h.ask(key, map[string]any{"message": "again"})
	require.Equal(t, http.StatusTooManyRequests, res.Status, string(res.Body))
	assert.Equal(t, string(problem.AgentQuotaExceeded), res.Code())
	assert.Equal(t, "7200", res.Header.Get("Retry-After"), "the next UTC midnight")
	assert.Len(t, h.fake.Requests(), calls, "a refused run never reaches the model")

	me := h.Do("GET", "/v1/api/me", key, nil)
	require.Equal(t, 200, me.Status)
	assert.Equal(t, map[string]any{"dailyTokens": float64(300), "usedToday": float64(480), "remaining": float64(0),
		"resetsAt": "2026-03-05T00:00:00Z"}, me.JSON()["agent"])

	// Other keys have their own budget (the default), and midnight renews it.
	other := h.Key("acme", auth.Test)
	res, _ = h.ask(other, map[string]any{"message": "who am I?"})
	assert.Equal(t, http.StatusOK, res.Status)
	offset.Store(int64(2 * time.Hour))
	res, _ = h.ask(key, map[string]any{"message": "a new day"})
	assert.Equal(t, http.StatusOK, res.Status, string(res.Body))
}

func TestAgentRefusesAddressesOutsideTheAllowlist(t *testing.T) {
	h := budgetHarness(t, time.Now)
	key := h.KeyWith("acme", auth.Test, api.LimitsChange{AllowedIPs: []string{"127.0.0.2"}})

	res := h.DoWith(apitest.From("127.0.0.3"), "POST", "/v1/api/agent", key, map[string]any{"message": "who am I?"})
	require.Equal(t, http.StatusForbidden, res.Status)
	assert.Equal(t, string(problem.IPNotAllowed), res.Code())
	assert.Empty(t, h.fake.Requests(), "refused before any model call")

	res = h.DoWith(apitest.From("127.0.0.2"), "POST", "/v1/api/agent", key, map[string]any{"message": "who am I?"})
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	assert.NotEmpty(t, h.fake.Requests())
}
