package api

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
)

// Guard is the one front door of /v1/api for every surface: it
// authenticates the key, assigns the trace id, and writes the usage row.
type Guard struct {
	Authn  *auth.Authenticator
	Hasher *auth.Hasher
	Usage  *UsageWriter
	Log    zerolog.Logger
	// Repeats keeps storage faults, which fail every request alike, from
	// writing one error line each (nil: every line is written).
	Repeats *logdedup.Deduper
	Now     func() time.Time
	// ResourceMetadata returns the RFC 9728 metadata URL advertised in the
	// WWW-Authenticate header of 401s, so OAuth-aware MCP clients can discover it.
	ResourceMetadata func(r *http.Request) string
	// Limits are enforced on every surface; Audit records refusals.
	Limits Limits
	Audit  interface {
		InsertAudit(ctx context.Context, e store.AuditEvent) error
	}
	limitsOnce sync.Once
	// Strings every request would otherwise rebuild: the keyed hash of
	// the client address and the limiter's bucket names.
	addrHashes memo[netip.Addr, clientAddr]
	bucketKeys memo[keyLimit, string]
	policies   memo[keyLimit, [2]string]
}

// Wrap authenticates before next runs and records usage after.
func (g *Guard) Wrap(surface store.Surface, next http.Handler) http.Handler {
	// A guard built without limits still has the defaults.
	g.limitsOnce.Do(func() { g.Limits = g.Limits.withDefaults(g.Now) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := entryOf(r)
		var start time.Time
		var traceID string
		if entry != nil { // the access log has set the header already
			start, traceID = entry.start, entry.traceID
		} else {
			start, traceID = g.Now(), telemetry.TraceID(r.Context())
			w.Header()["X-Trace-Id"] = []string{traceID}
		}

		ip := g.Limits.ClientIP.Of(r)
		addr := g.addrHashes.get(ip, g.hashAddr)
		token, err := auth.CredentialFromHeaders(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
		if err == nil || isProbe(err) {
			if prob := g.authThrottled(r.Context(), w, addr); prob != nil {
				writeProblem(w, traceID, prob)
				return
			}
		}
		var p auth.Principal
		if err == nil {
			var t auth.Token
			if t, err = auth.ParseToken(token); err == nil {
				if entry != nil {
					entry.keyPrefix = t.Prefix
				}
				p, err = g.Authn.AuthenticateToken(r.Context(), t)
			}
		}
		if err != nil {
			if isProbe(err) {
				if prob := g.countAuthFailure(r.Context(), w, addr); prob != nil {
					err = prob
				}
			}
			g.deny(w, r, traceID, err)
			return
		}
		// What the handler is given is made in one allocation.
		req := &guarded{scope: tools.RequestScope{Meta: tools.RequestMeta{TraceID: traceID}}, sw: statusWriter{ResponseWriter: w}}
		sw := &req.sw
		ctx := tools.WithRequestScope(auth.WithPrincipal(r.Context(), p), &req.scope)
		// Deferred so a handler that panics still leaves its usage row.
		defer func() {
			if v := recover(); v != nil {
				g.recovered(sw, r, traceID, v)
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			endpoint := req.scope.Endpoint()
			if endpoint == "" {
				endpoint = r.Pattern
			}
			if endpoint == "" {
				endpoint = r.Method + " " + r.URL.Path
			}
			g.Usage.Record(store.Usage{
				ID: store.NewIDAt("use", start), KeyID: p.KeyID, TenantID: p.TenantID, Environment: p.Environment,
				Surface: surface, Endpoint: endpoint, Method: r.Method, Status: sw.status,
				DurationMS: float64(g.Now().Sub(start).Microseconds()) / 1000, IPHash: addr.hash,
				TraceID: traceID, At: start,
			})
		}()
		if prob := g.enforce(ctx, sw, req.rateHeader[:], r, p, ip, surface, traceID); prob != nil {
			writeProblem(sw, traceID, prob)
			return
		}
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// guarded is what the guard hands an authenticated request's handler,
// and the backing of its RateLimit headers' values.
type guarded struct {
	scope      tools.RequestScope
	sw         statusWriter
	rateHeader [2]string
}

// recovered answers for a handler that panicked: a 500 problem with the
// trace id when nothing was sent yet, and a log line with the stack but
// not the client's address. It never panics again: net/http would log the
// raw IP and cut the connection without an answer.
func (g *Guard) recovered(sw *statusWriter, r *http.Request, traceID string, v any) {
	recoverPanic(g.Log, sw, r, traceID, v)
}

// recoverPanic answers a handler's panic with a 500 problem carrying the
// trace id and logs it without the client's address (net/http's own panic
// log names the raw IP, so a panic must never reach it).
func recoverPanic(log zerolog.Logger, sw *statusWriter, r *http.Request, traceID string, v any) {
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
		sw.status = http.StatusInternalServerError
		return
	}
	log.Error().Str("trace_id", traceID).Str("route", r.Pattern).Str("panic", fmt.Sprint(v)).
		Str("stack", string(debug.Stack())).Msg("handler panicked")
	if sw.status == 0 {
		writeProblem(sw, traceID, problem.New(problem.Internal, "an internal error occurred").
			WithHint("quote the trace id when reporting it"))
	}
	sw.status = http.StatusInternalServerError
}

func (g *Guard) deny(w http.ResponseWriter, r *http.Request, traceID string, err error) {
	p := problemFrom(err)
	metrics.AuthFailures.WithLabelValues(string(p.Code)).Inc()
	if p.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="veref"`
		if g.ResourceMetadata != nil {
			challenge += `, resource_metadata="` + g.ResourceMetadata(r) + `"`
		}
		if p.Code != problem.AuthMissing {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if p.Status >= 500 {
		g.Repeats.Error(g.Log, "authentication unavailable", err).Str("trace_id", traceID).Str("code", string(p.Code)).Send()
	}
	writeProblem(w, traceID, p)
}

// clientAddr is what the guard knows of a caller's address: its keyed
// hash, which usage rows carry so they can be grouped by caller without
// storing who it is, and the limiter's bucket of its failed attempts.
type clientAddr struct {
	hash       string
	authBucket string
}

func (g *Guard) hashAddr(ip netip.Addr) clientAddr {
	h := hex.EncodeToString(g.Hasher.Hash("ip\x00" + ip.String())[:16])
	return clientAddr{hash: h, authBucket: "authfail:" + h}
}

// statusWriter remembers the status for the usage row and keeps streaming
// (Flush) working for SSE responses.
type statusWriter struct {
	http.ResponseWriter
	status int
	// onHeader, when set, may add headers once the status is known.
	onHeader func(h http.Header, status int)
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if s.onHeader != nil {
			s.onHeader(s.Header(), code)
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := s.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}
