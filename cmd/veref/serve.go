package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/console"
	"github.com/verefwork/veref/devidp"
	"github.com/verefwork/veref/logdedup"
	"github.com/verefwork/veref/mail"
	vmcp "github.com/verefwork/veref/mcp"
	"github.com/verefwork/veref/metrics"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/telemetry"
	"github.com/verefwork/veref/tools"
	"github.com/verefwork/veref/workers"
)

func (c *cli) serveCmd() *cobra.Command {
	var dev, noMigrate bool
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API server",
		Long: `Run the API server (REST, MCP, Ask Veref, the referee pages).

Configuration comes from the environment: VEREF_DATABASE_URL, API_KEY_PEPPER,
VEREF_ADDR, VEREF_PUBLIC_URL, CLERK_JWKS_URL, CLERK_ISSUER, OPENROUTER_API_KEY, ...
With --dev none is needed.`,
		Args: exactArgs(0, "[flags]"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdServe(cmd.Context(), dev, addr, noMigrate, c.getenv, c.stdout, c.stderr)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&dev, "dev", false, "development mode: embedded SQLite, built-in pepper, demo tenant and a printed test key")
	fs.StringVar(&addr, "addr", "", "listen address (default $VEREF_ADDR or 127.0.0.1:8080)")
	fs.BoolVar(&noMigrate, "no-migrate", false, "do not apply migrations on start")
	return cmd
}

func cmdServe(ctx context.Context, dev bool, addr string, noMigrate bool, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(dev, getenv)
	if err != nil {
		return err
	}
	if err := cfg.checkMail(getenv); err != nil {
		return err
	}
	if addr != "" {
		cfg.addr = addr
	}
	tuneGC(getenv, memoryAvailable)
	logs := newLogBuffer(stderr)
	defer logs.Close() // deferred first, so it runs last: every line is out
	log := newLogger(cfg.logFormat, logs, stderr == os.Stderr)
	if w := cfg.devWarning(); w != "" {
		fmt.Fprintln(stderr, w)
	}

	st, err := cfg.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if !noMigrate {
		if err := st.Migrate(ctx); err != nil {
			return fmt.Errorf("migrating the database: %w", err)
		}
	}
	hasher, err := auth.NewHasher(cfg.pepper)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (set VEREF_ADDR or --addr)", cfg.addr, err)
	}
	base := "http://" + ln.Addr().String()
	if dev {
		if err := bootstrapDev(ctx, st, hasher, base, cfg.databaseURL, stdout); err != nil {
			ln.Close()
			return err
		}
	}

	if cfg.publicURL == "" {
		cfg.publicURL = base
	}
	if cfg.appURL == "" {
		cfg.appURL = strings.TrimRight(cfg.publicURL, "/") + "/app"
	}
	a, err := assemble(ctx, cfg, getenv, st, hasher, log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are at most 1 MiB; a client trickling one cannot hold a
		// connection longer than this. Responses (agent SSE) are not bounded here.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "veref listening on %s\n", base)
	stopMetrics, err := serveMetrics(cfg.metricsAddr, st, errc, stdout)
	if err != nil {
		_ = srv.Close()
		a.stop(ctx)
		return err
	}
	log.Info().Str("addr", base).Str("database", redactURL(cfg.databaseURL)).Bool("dev", cfg.dev).Msg("serving")

	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	// Drain in-flight requests first, then stop workers and flush usage rows
	// those requests produced.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.drain)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		log.Warn().Err(serr).Msg("shutdown did not drain every request in time")
	}
	a.stop(shutdownCtx)
	stopMetrics(shutdownCtx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info().Msg("stopped")
	return err
}

// app is the assembled server with its background parts.
type app struct {
	handler http.Handler
	stop    func(ctx context.Context)
	// drain is how long shutdown waits for in-flight requests: long enough
	// for an agent run to finish.
	drain time.Duration
}

// assemble wires every part on top of an open store and starts the
// background workers; stop drains them and flushes usage rows.
func assemble(ctx context.Context, cfg config, getenv func(string) string, st store.Store, hasher *auth.Hasher, log zerolog.Logger) (*app, error) {
	agentCfg, err := agent.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if agentCfg.APIKey == "" {
		log.Info().Msg("Ask Veref is off: set OPENROUTER_API_KEY to enable POST /v1/api/agent")
	}
	now := time.Now
	// One de-duplicator for every line a storage fault repeats; its counts
	// are written every 10s and at shutdown.
	repeats := logdedup.New(0, now)
	usage := api.NewUsageWriter(st, log, 0)
	audits := api.NewAuditWriter(st, log, 0)
	limits, closeLimits, err := cfg.limits.limits(st, now, log)
	if err != nil {
		return nil, err
	}
	agentCfg.OnUsage = func(ctx context.Context, tokens int) {
		p, _ := auth.FromContext(ctx)
		if err := limits.AgentTokens.Charge(context.WithoutCancel(ctx), p.KeyID, tokens); err != nil {
			repeats.Error(log, "charging the agent token budget", err).Str("key_id", p.KeyID).Int("tokens", tokens).Send()
		}
	}
	deps := tools.Deps{Now: now, Hasher: hasher, PublicURL: strings.TrimRight(cfg.publicURL, "/"), MailLogOnly: cfg.smtpAddr == "",
		DefaultRateLimit: limits.DefaultRate, AgentTokens: limits.AgentTokens}
	reg := tools.New(tools.NewRegistry(st, now), deps)
	reg.QueueReadAudits(audits)
	reg.SetLog(log)
	var clerk *api.ClerkVerifier
	var devIdP *devidp.Provider
	switch {
	case cfg.dev && cfg.clerkJWKSURL == "":
		// --dev without Clerk configured has its own identity provider,
		// verified through the same JWKS path; the JWKS is also served.
		// A Clerk configured explicitly (a dev instance) is used instead.
		if devIdP, err = devidp.Load(ctx, st); err != nil {
			return nil, err
		}
		clerk = api.NewClerkVerifier("http://dev.veref.invalid"+devidp.JWKSPath, devidp.Issuer, devIdP.Client())
	case cfg.clerkJWKSURL != "":
		clerk = api.NewClerkVerifier(cfg.clerkJWKSURL, cfg.clerkIssuer, nil)
		clerk.AuthorizedParties = cfg.clerkParties
	}
	tp, stopTracing, err := telemetry.NewProvider(ctx, getenv, version)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry: %w", err)
	}
	// Globals too, for code that asks otel directly (library instrumentation).
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(telemetry.Propagator)
	// Without export the server makes trace ids itself rather than run
	// otelhttp for spans that are never recorded.
	var tracer trace.TracerProvider
	if telemetry.Exporting(getenv) {
		log.Info().Msg("exporting traces over OTLP")
		tracer = tp
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	keyCache := watchKeys(workCtx, &wg, cfg, st, log, repeats)
	srv := api.New(api.Options{
		Store: st, Registry: reg, Hasher: hasher, Usage: usage, Log: log, Now: now, Version: version, KeyCache: keyCache, Tracer: tracer,
		Clerk: clerk, MaxActiveKeys: cfg.maxActiveKeys, AppURL: cfg.appURL, AuthTimeout: cfg.authTimeout, Limits: limits,
		PublicURL: publicURLIfSet(cfg),
		Repeats:   repeats,
		Public:    api.PublicRoutes(tools.NewPublic(st, deps), log, repeats),
		Agent:     agent.NewHandler(reg, st, agentCfg),
		MCP:       vmcp.NewHandler(reg, vmcp.Options{AllowedOrigins: cfg.mcpOrigins, Version: version}),
		MCPFront:  vmcp.Front(vmcp.Options{AllowedOrigins: cfg.mcpOrigins}),
	})

	logf := workerLog(log, repeats)
	var live mail.Mailer = mail.LogMailer{Log: logf}
	if cfg.smtpAddr != "" {
		live = mail.SMTPMailer{Addr: cfg.smtpAddr, From: cfg.smtpFrom, Username: cfg.smtpUser, Password: cfg.smtpPassword, Timeout: 30 * time.Second}
	}
	for _, w := range []interface{ Run(context.Context) }{
		&workers.ValuationWorker{Store: st, Now: now, Log: logf},
		&workers.OutboxWorker{Store: st, Live: live, Test: mail.LogMailer{Log: logf}, Now: now, Log: logf},
		cfg.limits.sweeper(st, now, log),
		repeats,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(workCtx) }()
	}
	drain := max(30*time.Second, agentCfg.Timeout+15*time.Second)
	con, err := console.New(console.Options{Store: st, Keys: srv.KeyService(), Sessions: srv.SessionCaller, Dev: devIdP,
		DevTenant: devTenant, ClerkPublishableKey: cfg.clerkPublishableKey, CLI: srv, AgentTokens: limits.AgentTokens, Now: now, Log: log})
	if err != nil {
		stopWork()
		return nil, err
	}
	root := http.NewServeMux()
	root.Handle("/", srv)
	root.Handle(console.Prefix+"/", con)
	if devIdP != nil {
		root.Handle("GET "+devidp.JWKSPath, devIdP)
	}
	return &app{handler: root, drain: drain, stop: func(ctx context.Context) {
		stopWork()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			log.Warn().Msg("background workers did not stop in time; flushing usage rows anyway")
		}
		if err := usage.Close(ctx); err != nil {
			log.Error().Err(err).Msg("flushing usage rows")
		}
		if err := audits.Close(ctx); err != nil {
			log.Error().Err(err).Msg("flushing audit events")
		}
		closeLimits()
		if err := stopTracing(ctx); err != nil {
			log.Warn().Err(err).Msg("flushing traces")
		}
		repeats.Close() // the counts of failures while flushing too
	}}, nil
}

// watchKeys starts the verified-key cache and the store's change feed that
// keeps it honest; nil when VEREF_KEY_CACHE_TTL=0.
func watchKeys(ctx context.Context, wg *sync.WaitGroup, cfg config, st store.Store, log zerolog.Logger, repeats *logdedup.Deduper) *auth.KeyCache {
	w, ok := st.(store.KeyWatcher)
	if !ok || cfg.keyCacheTTL == 0 {
		return nil
	}
	if pg, ok := st.(*postgres.Store); ok {
		pg.OnWatchError(func(err error) {
			repeats.Warn(log, "key change listener dropped; key cache bypassed until it reconnects", err).Send()
		})
	}
	c := auth.NewKeyCache(cfg.keyCacheTTL, nil)
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.WatchKeys(ctx, c) }()
	return c
}

// serveMetrics serves /metrics on its own listener when addr is set, so
// the scrape port can stay private while the API is public. Off by
// default, --dev included, so several dev servers never fight over a port.
func serveMetrics(addr string, st store.Store, errc chan<- error, stdout io.Writer) (stop func(context.Context), err error) {
	if ss, ok := st.(metrics.StoreStats); ok {
		metrics.RegisterStore(ss)
	}
	if addr == "" {
		return func(context.Context) {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w (VEREF_METRICS_ADDR)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("metrics listener: %w", err):
			default:
			}
		}
	}()
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", ln.Addr())
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }, nil
}

// publicURLIfSet is VEREF_PUBLIC_URL, or "" when the operator left it to
// the listen address: then advertised URLs follow the request.
func publicURLIfSet(cfg config) string {
	if cfg.publicURLSet {
		return cfg.publicURL
	}
	return ""
}

// gcPercent is the collector's target when GOGC is unset. Every request
// allocates a few kilobytes against a small live heap, so at Go's default
// (100) the collector ran so often that it took a tenth of the server's CPU
// under load. 400 lets the heap grow to five times the live heap between
// collections; since a request that holds much (a usage summary reads up to
// 200,000 rows) would then grow it five times as far, serve also sets a
// soft memory limit at 80% of the memory it may use (the cgroup's limit, or
// the machine's), where the collector works harder instead. GOGC or
// GOMEMLIMIT, when set, decide instead.
const gcPercent = 400

func tuneGC(getenv func(string) string, memory func() (int64, bool)) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	if n, ok := memory(); ok {
		debug.SetMemoryLimit(n / 10 * 8)
	}
}

// memoryAvailable is the memory this process may use: its cgroup's limit
// (v2, then v1), else the machine's.
func memoryAvailable() (int64, bool) {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			if n, ok := parseMemoryLimit(string(b)); ok {
				return n, true
			}
		}
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	return parseMemTotal(string(b))
}

// parseMemoryLimit reads a cgroup memory limit; "max" (v2) and v1's huge
// number both mean none.
func parseMemoryLimit(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}

// parseMemTotal reads MemTotal from /proc/meminfo, in bytes.
func parseMemTotal(meminfo string) (int64, bool) {
	for line := range strings.Lines(meminfo) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil || kb <= 0 {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}
