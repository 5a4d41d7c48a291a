package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/retention"
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
		AgentTokens: &quota.AgentTokens{Store: st, Default: c.agentDailyTokens, Now: now, ShowFor: quota.DefaultShowFor}}
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
	l.Limiter = &ratelimit.Shared{Redis: rdb, Prefix: "veref:", Local: local, OnFallback: metrics.RateLimitFallbacks.Inc,
		Log: func(err error, n uint64) {
			log.Warn().Err(err).Uint64("fallbacks", n).Msg("Redis rate limiter unavailable; limiting in-process for now")
		}}
	return l, func() { _ = rdb.Close() }, nil
}

// sweeper is the retention worker (VEREF_RETENTION_*).
func (c limitsConfig) sweeper(st store.Store, now func() time.Time, log zerolog.Logger) *retention.Sweeper {
	return &retention.Sweeper{Store: st, Now: now, Usage: c.retentionUsage, Audit: c.retentionAudit,
		Log: func(deleted map[store.PurgeKind]int, err error) {
			ev := log.Info()
			if err != nil {
				ev = log.Warn().Err(err)
			}
			d := zerolog.Dict()
			for k, n := range deleted {
				d = d.Int(string(k), n)
			}
			ev.Dict("deleted", d).Msg("retention sweep")
		}}
}

// limitFlags are the limits a key is created with or changed to.
func limitFlags(fs *pflag.FlagSet, f adminFlags) {
	f.str(fs, "rate-limit", "requests per second, minute or hour, e.g. 600/minute (default $VEREF_DEFAULT_RATE_LIMIT)")
	f.str(fs, "allowed-ips", "comma-separated CIDRs the key may be used from, e.g. 203.0.113.0/24,2001:db8::/32; empty means any address")
	f.str(fs, "agent-daily-tokens", "Ask Veref tokens per UTC day (default $VEREF_AGENT_DAILY_TOKENS)")
}

// limitsFrom reads the limit flags that were given; others stay nil.
func limitsFrom(fs *pflag.FlagSet, f adminFlags) (api.LimitsChange, error) {
	var c api.LimitsChange
	if fs.Changed("rate-limit") {
		l, err := auth.ParseRateLimit(*f["rate-limit"])
		if err != nil {
			return c, usageError{"--rate-limit: " + err.Error()}
		}
		c.RateLimit = &l
	}
	if fs.Changed("allowed-ips") {
		c.AllowedIPs = []string{}
		for _, e := range strings.Split(*f["allowed-ips"], ",") {
			if e = strings.TrimSpace(e); e != "" {
				c.AllowedIPs = append(c.AllowedIPs, e)
			}
		}
	}
	if fs.Changed("agent-daily-tokens") {
		n, err := strconv.ParseInt(strings.ReplaceAll(*f["agent-daily-tokens"], ",", ""), 10, 64)
		if err != nil {
			return c, usageError{"--agent-daily-tokens must be a whole number of tokens"}
		}
		c.AgentDailyTokens = &n
	}
	return c, nil
}

func (c *cli) keysLimits(fs *pflag.FlagSet, f adminFlags) func(ctx context.Context, e *adminEnv) error {
	f.str(fs, "tenant", "tenant id (required)")
	f.str(fs, "id", "key id (required)")
	limitFlags(fs, f)
	return func(ctx context.Context, e *adminEnv) error {
		change, err := limitsFrom(fs, f)
		if err != nil {
			return err
		}
		if change.RateLimit == nil && change.AllowedIPs == nil && change.AgentDailyTokens == nil {
			return usageError{"give at least one of --rate-limit, --allowed-ips, --agent-daily-tokens"}
		}
		v, err := e.keyService().UpdateLimits(ctx, *f["tenant"], *f["id"], change, operator)
		if err != nil {
			return explain(err, "key")
		}
		return e.print(v, func(w *tabwriter.Writer) {
			rl := "default"
			if v.RateLimit != nil {
				rl = v.RateLimit.String()
			}
			ips := strings.Join(v.AllowedIPs, ",")
			if ips == "" {
				ips = "any"
			}
			fmt.Fprintf(w, "updated key\t%s\trate %s\tallowed %s\n", v.ID, rl, cell(ips))
		})
	}
}
