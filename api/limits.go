package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/quota"
	"github.com/verefwork/veref/ratelimit"
	"github.com/verefwork/veref/store"
)

// DefaultRateLimit and DefaultAuthFailureLimit apply when Limits leaves
// them zero.
var (
	DefaultRateLimit        = auth.RateLimit{Requests: 600, Per: "minute"}
	DefaultAuthFailureLimit = auth.RateLimit{Requests: 30, Per: "minute"}
)

// Limits configures what the guard enforces after authentication.
type Limits struct {
	// Limiter holds the buckets; nil is an in-process limiter.
	Limiter ratelimit.Limiter
	// DefaultRate applies to keys without a rate limit of their own.
	DefaultRate auth.RateLimit
	// AuthFailures bounds AUTH_INVALID_KEY / AUTH_INVALID_FORMAT answers
	// per client address.
	AuthFailures auth.RateLimit
	// AgentTokens is the daily token budget of the agent surface; nil
	// leaves it unlimited.
	AgentTokens *quota.AgentTokens
	// ClientIP finds the caller's address (trusted proxies).
	ClientIP ClientIP
}

func (l Limits) withDefaults(now func() time.Time) Limits {
	if l.Limiter == nil {
		l.Limiter = ratelimit.NewLocal(now)
	}
	if l.DefaultRate.Requests == 0 {
		l.DefaultRate = DefaultRateLimit
	}
	if l.AuthFailures.Requests == 0 {
		l.AuthFailures = DefaultAuthFailureLimit
	}
	return l
}

func toLimit(l auth.RateLimit) ratelimit.Limit {
	return ratelimit.Limit{Requests: l.Requests, Window: l.Window()}
}

// isProbe is a failure that guessing keys produces.
func isProbe(err error) bool {
	var ae *auth.Error
	return errors.As(err, &ae) && (ae.Code == problem.AuthInvalidKey || ae.Code == problem.AuthInvalidFormat)
}

// authThrottled looks (without spending) whether the address has used up
// its failed attempts; then every credential from it waits, valid or not,
// so the answer cannot tell a prober which guess was right.
func (g *Guard) authThrottled(ctx context.Context, w http.ResponseWriter, addr clientAddr) *Problem {
	lim := g.Limits.AuthFailures
	res := g.Limits.Limiter.AllowN(ctx, addr.authBucket, toLimit(lim), 0)
	if res.Allowed {
		return nil
	}
	return authFailureProblem(w, lim, res)
}

// countAuthFailure spends one failed attempt of the address; past the
// limit the answer is 429 instead of 401.
func (g *Guard) countAuthFailure(ctx context.Context, w http.ResponseWriter, addr clientAddr) *Problem {
	lim := g.Limits.AuthFailures
	res := g.Limits.Limiter.AllowN(ctx, addr.authBucket, toLimit(lim), 1)
	if res.Allowed {
		return nil
	}
	return authFailureProblem(w, lim, res)
}

func authFailureProblem(w http.ResponseWriter, lim auth.RateLimit, res ratelimit.Result) *Problem {
	setRateHeaders(w.Header(), nil, policyHeader("auth-failures", lim), res)
	w.Header().Set("Retry-After", seconds(res.RetryAfter))
	return problem.New(problem.RateLimited, "too many requests with an unknown or malformed API key came from this address").
		WithHint("check the key, then retry after " + seconds(res.RetryAfter) + " seconds")
}

// enforce runs the limits of an authenticated request: the key's address
// allowlist, its rate limit and, on the agent surface, its token budget.
// Every answer gets the RateLimit headers of the key's policy.
func (g *Guard) enforce(ctx context.Context, w http.ResponseWriter, rateHeader []string, r *http.Request, p auth.Principal, ip netip.Addr, surface store.Surface, traceID string) *Problem {
	if !auth.AllowsIP(p.AllowedIPs, ip) {
		return g.refuseAddress(ctx, r, p, ip, surface, traceID)
	}
	lim := g.Limits.DefaultRate
	if p.RateLimit != nil {
		lim = *p.RateLimit
	}
	kl := keyLimit{keyID: p.KeyID, lim: lim}
	res := g.Limits.Limiter.AllowN(ctx, g.bucketKeys.get(kl, bucketKey), toLimit(lim), 1)
	setRateHeaders(w.Header(), rateHeader, g.policies.get(kl, defaultPolicy), res)
	if !res.Allowed {
		w.Header().Set("Retry-After", seconds(res.RetryAfter))
		return problem.New(problem.RateLimited, "this API key is limited to "+strconv.Itoa(lim.Requests)+" requests per "+lim.Per).
			WithHint("retry after " + seconds(res.RetryAfter) + " seconds, or ask a tenant admin for a higher limit")
	}
	if surface == store.SurfaceAgent && g.Limits.AgentTokens != nil {
		return g.agentBudget(ctx, w, p, traceID)
	}
	return nil
}

func (g *Guard) agentBudget(ctx context.Context, w http.ResponseWriter, p auth.Principal, traceID string) *Problem {
	st, err := g.Limits.AgentTokens.Status(ctx, p)
	if err != nil {
		// The budget is accounting, not security: an unreadable count
		// lets the run go rather than take Ask Veref down with storage.
		g.Repeats.Warn(g.Log, "agent token budget unreadable; allowing the run", err).Str("trace_id", traceID).Send()
		return nil
	}
	if !st.Exceeded() {
		return nil
	}
	w.Header().Set("Retry-After", seconds(st.ResetsAt.Sub(g.Now())))
	return problem.New(problem.AgentQuotaExceeded, "this API key has used its "+strconv.FormatInt(st.DailyTokens, 10)+" Ask Veref tokens for today (UTC)").
		WithHint("the budget renews at " + st.ResetsAt.Format(time.RFC3339) + "; a tenant admin can raise agentDailyTokens")
}

// refuseAddress is the 403 for an address outside the key's allowlist,
// audited as a refusal. It names the key's prefix, never the list.
func (g *Guard) refuseAddress(ctx context.Context, r *http.Request, p auth.Principal, ip netip.Addr, surface store.Surface, traceID string) *Problem {
	prob := problem.New(problem.IPNotAllowed, "this API key does not accept requests from "+ip.String()).
		WithHint("key vrf_" + string(p.Environment) + "_" + p.KeyPrefix + " has an IP allowlist; ask a tenant admin to add this address")
	if g.Audit == nil {
		return prob
	}
	ev := store.NewAuditEvent(store.TenancyOf(p), store.Actor{Kind: store.ActorAPIKey, ID: p.KeyID}, surface, traceID, "request", g.Now().UTC()).
		On("api_key", p.KeyID).WithOutcome(store.Outcome(problem.IPNotAllowed)).
		WithData(map[string]any{"method": r.Method, "path": r.URL.Path, "ipHash": g.hashAddr(ip).hash})
	if err := g.Audit.InsertAudit(context.WithoutCancel(ctx), ev); err != nil {
		g.Log.Error().Err(err).Str("trace_id", traceID).Msg("auditing an address refusal")
	} else {
		prob.AuditID = ev.ID
	}
	return prob
}

// keyLimit is a key under the limit that applies to it.
type keyLimit struct {
	keyID string
	lim   auth.RateLimit
}

// bucketKey names a key's bucket. The limit is part of the name, so a
// changed limit starts from a full bucket at once instead of draining the
// old one.
func bucketKey(kl keyLimit) string { return "key:" + kl.keyID + ":" + kl.lim.String() }

func defaultPolicy(kl keyLimit) [2]string { return policyHeader("default", kl.lim) }

// policyHeader is the RateLimit-Policy of a policy, and the name of the
// policy that RateLimit reports on.
func policyHeader(policy string, lim auth.RateLimit) [2]string {
	return [2]string{`"` + policy + `";q=` + strconv.Itoa(lim.Requests) + ";w=" + strconv.Itoa(int(lim.Window()/time.Second)), policy}
}

// setRateHeaders writes draft-ietf-httpapi-ratelimit-headers (-08 and
// later): the policy's quota and window, and what remains with the seconds
// until the bucket is full again. Set straight into the map, under the
// names Header.Set would canonicalise them to, backed by vals when given
// (nil: a new array).
func setRateHeaders(h http.Header, vals []string, policy [2]string, res ratelimit.Result) {
	var b [64]byte
	v := append(b[:0], '"')
	v = append(v, policy[1]...)
	v = append(v, `";r=`...)
	v = strconv.AppendInt(v, int64(max(res.Remaining, 0)), 10)
	v = append(v, ";t="...)
	v = strconv.AppendInt(v, int64(math.Ceil(max(res.ResetAfter, 0).Seconds())), 10)
	if len(vals) < 2 {
		vals = make([]string, 2)
	}
	vals[0], vals[1] = policy[0], string(v)
	h["Ratelimit-Policy"] = vals[0:1:1]
	h["Ratelimit"] = vals[1:2:2]
}

// seconds renders a wait as whole seconds, rounded up, at least 1.
func seconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// documentLimits adds the limits to every /v1/api operation of the
// OpenAPI document: the RateLimit headers on each authenticated answer,
// the 429 with Retry-After, and IP_NOT_ALLOWED among the 403s.
func documentLimits(o *huma.OpenAPI) {
	if o.Components.Headers == nil {
		o.Components.Headers = map[string]*huma.Header{}
	}
	str := func() *huma.Schema { return &huma.Schema{Type: "string"} }
	o.Components.Headers["RateLimit-Policy"] = &huma.Header{Schema: str(), Example: `"default";q=600;w=60`,
		Description: "draft-ietf-httpapi-ratelimit-headers: the key's quota q per window of w seconds " +
			"(a burst may use the whole quota at once)."}
	o.Components.Headers["RateLimit"] = &huma.Header{Schema: str(), Example: `"default";r=599;t=1`,
		Description: "draft-ietf-httpapi-ratelimit-headers: r requests remain now; t seconds until the quota is whole again."}
	o.Components.Headers["Retry-After"] = &huma.Header{Schema: &huma.Schema{Type: "integer", Minimum: floatPtr(1)},
		Description: "Seconds to wait before retrying."}
	ref := func(name string) *huma.Header { return &huma.Header{Ref: "#/components/headers/" + name} }
	problem := &huma.Schema{Ref: "#/components/schemas/Problem"}
	for path, item := range o.Paths {
		if !strings.HasPrefix(path, "/v1/api/") {
			continue
		}
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op == nil {
				continue
			}
			for code, resp := range op.Responses {
				if code == "401" {
					continue
				}
				if resp.Headers == nil {
					resp.Headers = map[string]*huma.Header{}
				}
				resp.Headers["RateLimit-Policy"] = ref("RateLimit-Policy")
				resp.Headers["RateLimit"] = ref("RateLimit")
			}
			if r := op.Responses["403"]; r != nil {
				r.Description += "; IP_NOT_ALLOWED: the key's IP allowlist does not include the caller's address"
			} else {
				op.Responses["403"] = &huma.Response{Description: "IP_NOT_ALLOWED: the key's IP allowlist does not include the caller's address",
					Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
			}
			desc := "RATE_LIMITED: over the key's rate limit, or too many failed authentications from this address"
			if op.OperationID == "ask_veref" {
				desc += "; AGENT_QUOTA_EXCEEDED: the key's daily token budget is spent (Retry-After: the next UTC midnight)"
			}
			op.Responses["429"] = &huma.Response{Description: desc,
				Headers: map[string]*huma.Header{"Retry-After": ref("Retry-After"),
					"RateLimit-Policy": ref("RateLimit-Policy"), "RateLimit": ref("RateLimit")},
				Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
		}
	}
}

func floatPtr(f float64) *float64 { return &f }
