package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminKeyLimits(t *testing.T) {
	env := map[string]string{
		"VEREF_DATABASE_URL":       "sqlite:" + filepath.Join(t.TempDir(), "ops.db"),
		"API_KEY_PEPPER":           strings.Repeat("s", 40),
		"VEREF_DEFAULT_RATE_LIMIT": "50/second",
	}
	_, err := admin(t, env, "tenants", "create", "--id", "acme", "--name", "Acme")
	require.NoError(t, err)
	_, err = admin(t, env, "recruiters", "create", "--tenant", "acme", "--id", "r1", "--email", "r@acme.test")
	require.NoError(t, err)

	_, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "r1", "--name", "bad list", "--env", "test",
		"--allowed-ips", "203.0.113.0/24,nope")
	require.ErrorContains(t, err, `allowedIps[1] "nope"`)
	_, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "r1", "--name", "bad rate", "--env", "test",
		"--rate-limit", "600/fortnight")
	require.ErrorContains(t, err, "--rate-limit")

	out, err := admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "r1", "--name", "limited", "--env", "test",
		"--rate-limit", "600/minute", "--allowed-ips", "203.0.113.0/24,2001:db8::/32", "--agent-daily-tokens", "5000", "--json")
	require.NoError(t, err)
	var created struct {
		APIKey map[string]any `json:"apiKey"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created), out)
	assert.Equal(t, map[string]any{"requests": float64(600), "per": "minute"}, created.APIKey["rateLimit"])
	assert.Equal(t, []any{"203.0.113.0/24", "2001:db8::/32"}, created.APIKey["allowedIps"])
	assert.Equal(t, float64(5000), created.APIKey["agentDailyTokens"])

	out, err = admin(t, env, "keys", "create", "--tenant", "acme", "--recruiter", "r1", "--name", "plain", "--env", "test", "--json")
	require.NoError(t, err)
	var plain struct {
		APIKey map[string]any `json:"apiKey"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &plain))
	assert.Equal(t, map[string]any{"requests": float64(50), "per": "second"}, plain.APIKey["rateLimit"], "VEREF_DEFAULT_RATE_LIMIT")
	assert.Equal(t, float64(1_000_000), plain.APIKey["agentDailyTokens"])

	id := created.APIKey["id"].(string)
	out, err = admin(t, env, "keys", "limits", "--tenant", "acme", "--id", id, "--rate-limit", "10/s", "--allowed-ips", "")
	require.NoError(t, err)
	assert.Contains(t, out, "rate 10/second")
	assert.Contains(t, out, "allowed any")
	_, err = admin(t, env, "keys", "limits", "--tenant", "acme", "--id", id)
	require.ErrorContains(t, err, "at least one")
}

func TestLimitsConfig(t *testing.T) {
	for _, c := range []struct{ name, value, want string }{
		{"VEREF_DEFAULT_RATE_LIMIT", "lots", "VEREF_DEFAULT_RATE_LIMIT"},
		{"VEREF_AUTH_FAILURE_LIMIT", "0/minute", "VEREF_AUTH_FAILURE_LIMIT"},
		{"VEREF_REDIS_URL", "127.0.0.1:6379", "redis://"},
		{"VEREF_TRUSTED_PROXIES", "10.0.0.0/8,proxy", "VEREF_TRUSTED_PROXIES"},
		{"VEREF_AGENT_DAILY_TOKENS", "-5", "VEREF_AGENT_DAILY_TOKENS"},
		{"VEREF_RETENTION_USAGE", "5m", "less than an hour"},
		{"VEREF_RETENTION_AUDIT", "forever", "VEREF_RETENTION_AUDIT"},
	} {
		_, err := loadLimits(func(k string) string {
			if k == c.name {
				return c.value
			}
			return ""
		})
		assert.ErrorContains(t, err, c.want, c.name)
	}
	l, err := loadLimits(func(k string) string {
		return map[string]string{"VEREF_AGENT_DAILY_TOKENS": "1,000,000", "VEREF_RETENTION_USAGE": "30d", "VEREF_RETENTION_AUDIT": "8760h"}[k]
	})
	require.NoError(t, err)
	assert.Equal(t, int64(1_000_000), l.agentDailyTokens)
	assert.Equal(t, "720h0m0s", l.retentionUsage.String())
	assert.Equal(t, "8760h0m0s", l.retentionAudit.String())
	assert.Equal(t, "600/minute", l.defaultRate.String())
	assert.Equal(t, "30/minute", l.authFailures.String())
}
