package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/store"
)

// limitsConfig is issue 14's part of the environment: rate limits, the
// shared limiter, trusted proxies, the agent's token budget and retention.
type limitsConfig struct {
	defaultRate      auth.RateLimit
	authFailures     auth.RateLimit
	redisURL         string
	trustedProxies   []netip.Prefix
	agentDailyTokens int64
	retentionUsage   time.Duration
	retentionAudit   time.Duration // 0: audit events are kept
}

func loadLimits(getenv func(string) string) (limitsConfig, error) {
	c := limitsConfig{defaultRate: api.DefaultRateLimit, authFailures: api.DefaultAuthFailureLimit,
		redisURL: strings.TrimSpace(getenv("VEREF_REDIS_URL")), agentDailyTokens: quota.DefaultAgentDailyTokens,
		retentionUsage: 90 * 24 * time.Hour}
	var err error
	if v := getenv("VEREF_DEFAULT_RATE_LIMIT"); v != "" {
		if c.defaultRate, err = auth.ParseRateLimit(v); err != nil {
			return c, fmt.Errorf("VEREF_DEFAULT_RATE_LIMIT: %w", err)
		}
	}
	if v := getenv("VEREF_AUTH_FAILURE_LIMIT"); v != "" {
		if c.authFailures, err = auth.ParseRateLimit(v); err != nil {
			return c, fmt.Errorf("VEREF_AUTH_FAILURE_LIMIT: %w", err)
		}
	}
	if c.redisURL != "" && !strings.HasPrefix(c.redisURL, "redis://") && !strings.HasPrefix(c.redisURL, "rediss://") {
		return c, fmt.Errorf("VEREF_REDIS_URL must look like redis://127.0.0.1:6379/0, not %q", redactURL(c.redisURL))
	}
	if c.trustedProxies, err = api.ParseTrustedProxies(getenv("VEREF_TRUSTED_PROXIES")); err != nil {
		return c, fmt.Errorf("VEREF_TRUSTED_PROXIES takes comma-separated CIDRs such as 10.0.0.0/8: %w", err)
	}
	if v := strings.ReplaceAll(getenv("VEREF_AGENT_DAILY_TOKENS"), ",", ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("VEREF_AGENT_DAILY_TOKENS must be a whole number of tokens, not %q", v)
		}
		c.agentDailyTokens = n
	}
	if v := getenv("VEREF_RETENTION_USAGE"); v != "" {
		if c.retentionUsage, err = parseAge(v); err != nil {
			return c, fmt.Errorf("VEREF_RETENTION_USAGE: %w", err)
		}
	}
	if v := getenv("VEREF_RETENTION_AUDIT"); v != "" {
		if c.retentionAudit, err = parseAge(v); err != nil {
			return c, fmt.Errorf("VEREF_RETENTION_AUDIT: %w", err)
		}
	}
	return c, nil
}

// parseAge reads "90d" or a Go duration such as "720h"; at least an hour.
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("an age looks like 90d or 720h, not %q", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("an age looks like 90d or 720h, not %q", s)
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%q is less than an hour; keep rows at least that long", s)
	}
	return d, nil
}

// limits builds the guard's limits: in-process, or shared through Redis
// with an in-process fallback. stop closes the Redis client.
func (c limitsConfig) limits(st store.Store, now func() time.Time, log zerolog.Logger) (api.Limits, func(), error) {
	l := api.Limits{DefaultRate: c.defaultRate, AuthFailures: c.authFailures,
		ClientIP:    api.ClientIP{Trusted: c.trustedProxies},
		AgentTokens: &quota.AgentTokens{Store: st, Default: c.agentDailyTokens, Now: now}}
	local := ratelimit.NewLocal(now)
	l.Limiter = local
	if c.redisURL == "" {
		return l, func() {}, nil
	}
	rdb, err := ratelimit.NewRedisClient(c.redisURL)
	if err != nil {
		return l, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		// Not fatal: the limiter falls back until Redis answers.
		log.Warn().Err(err).Str("redis", redactURL(c.redisURL)).Msg("Redis is not answering; rate limits are per instance until it does")
	}
	l.Limiter = &ratelimit.Shared{Redis: rdb, Prefix: "veref:", Local: local,
		Log: func(err error, n uint64) {
			log.Warn().Err(err).Uint64("fallbacks", n).Msg("Redis rate limiter unavailable; limiting in-process for now")
		}}
	return l, func() { _ = rdb.Close() }, nil
}
