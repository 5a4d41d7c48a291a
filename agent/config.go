package agent

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config; DESIGN.md names the Gemini 3 chain.
const (
	DefaultBaseURL      = "https://openrouter.ai/api/v1"
	DefaultMaxSteps     = 8
	DefaultMaxToolCalls = 16
	DefaultMaxTokens    = 60000
	DefaultTimeout      = 90 * time.Second
)

// DefaultModels is the OpenRouter model chain, most capable first.
var DefaultModels = []string{"google/gemini-3-pro-preview", "google/gemini-3-flash-preview"}

// Config bounds and wires Ask Veref. Zero values take the defaults, except
// APIKey: without it the endpoint answers 503 AGENT_NOT_CONFIGURED.
type Config struct {
	APIKey  string
	BaseURL string
	// Models is the ordered fallback chain; the first answers when it can.
	Models       []string
	MaxSteps     int
	MaxToolCalls int
	// MaxTokens caps prompt plus completion tokens summed over every model
	// call of one run, as the provider reports them.
	MaxTokens int
	// Timeout is the wall-clock budget of one run, model calls and tools included.
	Timeout time.Duration
	// AttemptTimeout bounds a single model call, so one hung model leaves
	// time for the next in the chain; defaults to two thirds of Timeout.
	AttemptTimeout time.Duration
	// ChainPasses is how many times the whole chain is walked when every
	// model failed transiently (default 2: one retry); RetryBackoff is the
	// first pause between walks (default 500ms), doubling with jitter.
	ChainPasses  int
	RetryBackoff time.Duration
	// ApprovalTTL is how long a call paused for approval waits for a
	// decision; defaults to DefaultApprovalTTL.
	ApprovalTTL time.Duration
	HTTPClient  *http.Client
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
	// OnUsage is told the tokens (prompt plus completion) of every model
	// call as the provider reports them, with the request's context (its
	// principal): the daily token budget is charged from here.
	OnUsage func(ctx context.Context, tokens int)
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if len(c.Models) == 0 {
		c.Models = append([]string(nil), DefaultModels...)
	}
	if c.MaxSteps <= 0 {
		c.MaxSteps = DefaultMaxSteps
	}
	if c.MaxToolCalls <= 0 {
		c.MaxToolCalls = DefaultMaxToolCalls
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AttemptTimeout <= 0 || c.AttemptTimeout > c.Timeout {
		c.AttemptTimeout = c.Timeout * 2 / 3
	}
	if c.ChainPasses <= 0 {
		c.ChainPasses = 2
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.ApprovalTTL <= 0 {
		c.ApprovalTTL = DefaultApprovalTTL
	}
	if c.HTTPClient == nil {
		// No client-level timeout: every call carries the run's deadline.
		c.HTTPClient = &http.Client{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ConfigFromEnv reads OPENROUTER_API_KEY, OPENROUTER_BASE_URL,
// VEREF_AGENT_MODELS (comma-separated), VEREF_AGENT_MAX_STEPS,
// VEREF_AGENT_MAX_TOOL_CALLS, VEREF_AGENT_MAX_TOKENS and VEREF_AGENT_TIMEOUT
// (a Go duration such as 90s) and VEREF_AGENT_APPROVAL_TTL (how long a
// call waits for approval, default 1h). A missing API key is not an error: the
// server still starts and the endpoint explains what to set.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		APIKey:  strings.TrimSpace(getenv("OPENROUTER_API_KEY")),
		BaseURL: strings.TrimSpace(getenv("OPENROUTER_BASE_URL")),
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return c, fmt.Errorf("OPENROUTER_BASE_URL must be an http(s) URL such as %s, not %q", DefaultBaseURL, c.BaseURL)
	}
	if v := getenv("VEREF_AGENT_MODELS"); strings.TrimSpace(v) != "" {
		for _, m := range strings.Split(v, ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				return c, fmt.Errorf("VEREF_AGENT_MODELS has an empty entry in %q; use comma-separated OpenRouter model ids such as %s", v, strings.Join(DefaultModels, ","))
			}
			if strings.ContainsAny(m, " \t") {
				return c, fmt.Errorf("VEREF_AGENT_MODELS entry %q is not an OpenRouter model id", m)
			}
			c.Models = append(c.Models, m)
		}
	}
	ints := []struct {
		name string
		dst  *int
	}{
		{"VEREF_AGENT_MAX_STEPS", &c.MaxSteps},
		{"VEREF_AGENT_MAX_TOOL_CALLS", &c.MaxToolCalls},
		{"VEREF_AGENT_MAX_TOKENS", &c.MaxTokens},
	}
	for _, e := range ints {
		v := strings.TrimSpace(getenv(e.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("%s must be a positive integer, not %q", e.name, v)
		}
		*e.dst = n
	}
	if v := strings.TrimSpace(getenv("VEREF_AGENT_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("VEREF_AGENT_TIMEOUT must be a positive Go duration such as 90s or 2m, not %q", v)
		}
		c.Timeout = d
	}
	if v := strings.TrimSpace(getenv("VEREF_AGENT_APPROVAL_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("VEREF_AGENT_APPROVAL_TTL must be a positive Go duration such as 1h or 30m, not %q", v)
		}
		c.ApprovalTTL = d
	}
	return c.withDefaults(), nil
}
