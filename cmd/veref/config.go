package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/postgres"
	"github.com/verefwork/veref/store/sqlite"
	"github.com/verefwork/veref/store/sqlstore"
)

// devPepper is used only with --dev so a newcomer needs no secret; it is
// public, so keys minted with it protect nothing.
const devPepper = "veref-development-pepper-never-use-in-production"

// config is the server's configuration from flags and environment.
type config struct {
	dev          bool
	databaseURL  string
	pepper       []byte
	addr         string
	logFormat    string
	clerkJWKSURL string
	clerkIssuer  string
	// clerkPublishableKey names the Clerk instance the console's sign-in
	// page loads its frontend from.
	clerkPublishableKey string
	maxActiveKeys       int
	publicURL           string
	appURL              string // the recruiter console; default publicURL + /app
	smtpAddr            string
	smtpFrom            string
	smtpUser            string
	smtpPassword        string
	mcpOrigins          []string
	metricsAddr         string
	// clerkParties: origins whose pages may hold a session (Clerk's azp).
	clerkParties []string
	// keyCacheTTL is the verified-key cache's maximum age; 0 turns it off.
	keyCacheTTL time.Duration
	// revokeWait bounds how long a key change waits for every instance to
	// evict the key (PostgreSQL); 0 answers without waiting.
	revokeWait  time.Duration
	dbTimeout   time.Duration
	authTimeout time.Duration
	// publicURLSet: VEREF_PUBLIC_URL was given, so advertised URLs never
	// come from request headers.
	publicURLSet bool
	// publicPepper: --dev without API_KEY_PEPPER, so keys hash with a
	// pepper anyone can read.
	publicPepper bool
	limits       limitsConfig
}

// devWarning is said when --dev is pointed at a database it did not make:
// keys made there with a real pepper will not authenticate, and keys made
// here are only as secret as the public pepper.
func (c config) devWarning() string {
	if !c.publicPepper || c.databaseURL == "sqlite:veref-dev.db" {
		return ""
	}
	return "warning: --dev uses the built-in public pepper on " + redactURL(c.databaseURL) +
		"; keys made with API_KEY_PEPPER will not authenticate here, and keys made here protect nothing. Set API_KEY_PEPPER, or unset VEREF_DATABASE_URL to use veref-dev.db"
}

// loadConfig reads the environment; one clear line per problem.
func loadConfig(dev bool, getenv func(string) string) (config, error) {
	c := config{dev: dev, databaseURL: getenv("VEREF_DATABASE_URL"), addr: getenv("VEREF_ADDR"),
		logFormat: getenv("VEREF_LOG_FORMAT"), clerkJWKSURL: getenv("CLERK_JWKS_URL"),
		clerkIssuer: getenv("CLERK_ISSUER"), clerkPublishableKey: getenv("CLERK_PUBLISHABLE_KEY"), maxActiveKeys: 100, publicURL: getenv("VEREF_PUBLIC_URL"), appURL: getenv("VEREF_APP_URL"),
		smtpAddr: getenv("VEREF_SMTP_ADDR"), smtpFrom: getenv("VEREF_SMTP_FROM"),
		smtpUser: getenv("VEREF_SMTP_USERNAME"), metricsAddr: getenv("VEREF_METRICS_ADDR"), smtpPassword: getenv("VEREF_SMTP_PASSWORD")}
	if c.smtpAddr != "" && c.smtpFrom == "" {
		return c, fmt.Errorf("VEREF_SMTP_FROM must be set with VEREF_SMTP_ADDR (the sender address of invitation e-mails)")
	}
	if c.databaseURL == "" {
		c.databaseURL = "sqlite:veref.db"
		if dev {
			c.databaseURL = "sqlite:veref-dev.db"
		}
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:8080"
	}
	switch c.logFormat {
	case "":
		c.logFormat = "json"
		if dev {
			c.logFormat = "console"
		}
	case "json", "console":
	default:
		return c, fmt.Errorf("VEREF_LOG_FORMAT must be json or console, not %q", c.logFormat)
	}
	pepper := getenv("API_KEY_PEPPER")
	switch {
	case pepper == "" && dev:
		c.pepper = []byte(devPepper)
		c.publicPepper = true
	case pepper == "":
		return c, fmt.Errorf("API_KEY_PEPPER is not set: set it to a random secret of at least %d bytes (for example: openssl rand -base64 48), or use --dev", auth.MinPepperLen)
	case len(pepper) < auth.MinPepperLen:
		return c, fmt.Errorf("API_KEY_PEPPER is %d bytes; it must be at least %d", len(pepper), auth.MinPepperLen)
	default:
		c.pepper = []byte(pepper)
	}
	if (c.clerkJWKSURL == "") != (c.clerkIssuer == "") {
		return c, fmt.Errorf("set both CLERK_JWKS_URL and CLERK_ISSUER to enable key management, or neither")
	}
	for _, o := range strings.Split(getenv("CLERK_AUTHORIZED_PARTIES"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return c, fmt.Errorf("CLERK_AUTHORIZED_PARTIES takes origins like https://app.example.com, not %q", o)
			}
			c.clerkParties = append(c.clerkParties, strings.TrimRight(o, "/"))
		}
	}
	for _, o := range strings.Split(getenv("VEREF_MCP_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return c, fmt.Errorf("VEREF_MCP_ALLOWED_ORIGINS takes origins like https://app.example.com, not %q", o)
			}
			c.mcpOrigins = append(c.mcpOrigins, strings.TrimRight(o, "/"))
		}
	}
	c.publicURLSet = c.publicURL != ""
	if c.publicURLSet && !strings.HasPrefix(c.publicURL, "https://") && !strings.HasPrefix(c.publicURL, "http://") {
		return c, fmt.Errorf("VEREF_PUBLIC_URL must start with https:// or http://, not %q", c.publicURL)
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
		def  time.Duration
	}{{"VEREF_DB_TIMEOUT", &c.dbTimeout, sqlstore.DefaultTimeout}, {"VEREF_AUTH_TIMEOUT", &c.authTimeout, auth.DefaultLookupTimeout}} {
		*d.to = d.def
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return c, fmt.Errorf("%s must be a positive duration such as 5s or 500ms, not %q", d.name, v)
			}
			*d.to = t
		}
	}
	if v := getenv("VEREF_MAX_ACTIVE_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("VEREF_MAX_ACTIVE_KEYS must be a positive integer, not %q", v)
		}
		c.maxActiveKeys = n
	}
	for _, d := range []struct {
		name, example string
		to            *time.Duration
		def           time.Duration
	}{
		{"VEREF_KEY_CACHE_TTL", "30s (0 turns the key cache off)", &c.keyCacheTTL, auth.DefaultKeyCacheTTL},
		{"VEREF_REVOKE_WAIT", "1s (0 answers key changes without waiting for other instances)", &c.revokeWait, postgres.DefaultRevokeWait},
	} {
		*d.to = d.def
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t < 0 {
				return c, fmt.Errorf("%s must be a duration such as %s, not %q", d.name, d.example, v)
			}
			*d.to = t
		}
	}
	if _, _, err := splitDatabaseURL(c.databaseURL); err != nil {
		return c, err
	}
	var err error
	if c.limits, err = loadLimits(getenv); err != nil {
		return c, err
	}
	return c, nil
}

func splitDatabaseURL(u string) (kind, dsn string, err error) {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "postgres", u, nil
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(u, "sqlite:")
		if path == "" {
			return "", "", fmt.Errorf("VEREF_DATABASE_URL sqlite: needs a path, e.g. sqlite:veref.db")
		}
		return "sqlite", path, nil
	default:
		return "", "", fmt.Errorf("VEREF_DATABASE_URL must start with postgres://, postgresql:// or sqlite:, not %q", redactURL(u))
	}
}

// redactURL hides the secrets a database or Redis URL can carry: the
// user-info part and password-like query parameters (libpq accepts
// ?password= as well as user:password@).
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			u = u[:j+3] + "…" + u[i:]
		}
	}
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if lk := strings.ToLower(k); strings.Contains(lk, "password") || lk == "sslkey" || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
			parts[i] = k + "=…"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// foldLines folds a driver error that lists every connection attempt on its
// own line into the single line a failed start prints.
func foldLines(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// open opens the configured store.
func (c config) open(ctx context.Context) (store.Store, error) {
	st, err := openStore(ctx, c.databaseURL, c.dbTimeout)
	if pg, ok := st.(*postgres.Store); ok {
		pg.SetRevokeWait(c.revokeWait)
	}
	return st, err
}

func openStore(ctx context.Context, databaseURL string, timeout time.Duration) (store.Store, error) {
	kind, dsn, err := splitDatabaseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var st store.Store
	if kind == "postgres" {
		st, err = postgres.OpenWithTimeout(ctx, dsn, timeout)
	} else {
		var ss *sqlite.Store
		if ss, err = sqlite.Open(ctx, dsn); err == nil {
			ss.SetTimeout(timeout)
			st = ss
		}
	}
	if err != nil {
		// The driver's message can quote the URL it was given.
		msg := strings.ReplaceAll(foldLines(err), databaseURL, redactURL(databaseURL))
		return nil, fmt.Errorf("opening %s: %s", redactURL(databaseURL), msg)
	}
	return st, nil
}

// newLogger logs to w; color is for a console format on a terminal.
func newLogger(format string, w io.Writer, color bool) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !color}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

// checkMail is serve's rule for e-mail. Outside --dev, a server that would
// log live invitations instead of sending them must be told so explicitly:
// otherwise referees never hear and nobody notices.
func (c config) checkMail(getenv func(string) string) error {
	switch mode := getenv("VEREF_MAIL"); {
	case mode != "" && mode != "log" && mode != "smtp":
		return fmt.Errorf("VEREF_MAIL must be smtp or log, not %q", mode)
	case !c.dev && c.smtpAddr == "" && mode != "log":
		return fmt.Errorf("no mail transport: set VEREF_SMTP_ADDR (and VEREF_SMTP_FROM) to send invitation e-mails, or VEREF_MAIL=log to only log them")
	case mode == "smtp" && c.smtpAddr == "":
		return fmt.Errorf("VEREF_MAIL=smtp needs VEREF_SMTP_ADDR")
	}
	return nil
}
