package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	openrouter "github.com/revrost/go-openrouter"
	"github.com/verefwork/veref/problem"
)

// provider calls OpenRouter down the model chain.
type provider struct {
	client *openrouter.Client
	models []string
	cfg    Config
}

func newProvider(cfg Config) *provider {
	oc := openrouter.DefaultConfig(cfg.APIKey)
	oc.BaseURL = cfg.BaseURL
	oc.HTTPClient = traced(cfg.HTTPClient)
	oc.XTitle = "Ask Veref"
	return &provider{client: openrouter.NewClientWithConfig(*oc), models: cfg.Models, cfg: cfg}
}

// attempt records one model that was tried, for the error a caller sees.
type attempt struct {
	Model string
	Err   error
}

// chainError is every model of the chain failing (or the first failure that
// another model could not fix, such as a rejected API key).
type chainError struct {
	Attempts []attempt
}

func (e *chainError) Error() string {
	last := e.Attempts[len(e.Attempts)-1]
	return fmt.Sprintf("%s: %s", last.Model, describeProviderError(last.Err))
}

// Code says whether a retry later may work: the provider said it is
// unavailable or rate-limited (503), no model answered in time (504), or
// anything else failed (502).
func (e *chainError) Code() problem.Code {
	last := e.Attempts[len(e.Attempts)-1].Err
	if errors.Is(last, context.DeadlineExceeded) {
		return problem.AgentProviderTimeout
	}
	code, _ := openrouter.HTTPStatusCode(last)
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, openrouter.StatusProviderOverloaded:
		return problem.AgentProviderUnavailable
	}
	return problem.AgentProviderError
}

var errNoChoices = errors.New("the provider answered without any choice")

// choiceError is a model that failed mid-generation.
type choiceError struct{ native string }

func (e *choiceError) Error() string {
	if e.native != "" {
		return "the model stopped with an error (" + e.native + ")"
	}
	return "the model stopped with an error"
}

// walk runs req on the first model of the chain that answers. The whole
// chain is also sent as OpenRouter's `models` list so OpenRouter can fall back
// on its side; the client-side walk covers what it cannot (a failed or
// unreachable OpenRouter edge, timeouts, a model id it no longer routes).
func (p *provider) walk(ctx context.Context, req openrouter.ChatCompletionRequest) (openrouter.ChatCompletionResponse, error) {
	ce := &chainError{}
	for i, model := range p.models {
		req.Model = model
		req.Models = nil
		if rest := p.models[i:]; len(rest) > 1 {
			req.Models = rest
		}
		actx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
		resp, err := p.client.CreateChatCompletion(actx, req)
		cancel()
		if err == nil && len(resp.Choices) == 0 {
			err = errNoChoices
		}
		// OpenRouter reports a failure during generation as a 200 whose
		// choice finished with "error"; another model may well succeed.
		if err == nil && resp.Choices[0].FinishReason == "error" {
			err = &choiceError{native: resp.Choices[0].NativeFinishReason}
		}
		if err == nil {
			if resp.Model == "" {
				resp.Model = model
			}
			return resp, nil
		}
		ce.Attempts = append(ce.Attempts, attempt{Model: model, Err: err})
		if ctx.Err() != nil || !fallbackable(err) {
			break
		}
	}
	return openrouter.ChatCompletionResponse{}, ce
}

// fallbackable reports whether another model might succeed where this one
// failed: server errors, rate limits, timeouts, broken connections, and a
// model OpenRouter no longer serves (404). Bad credentials or a malformed
// request would fail the same way on every model.
func fallbackable(err error) bool {
	if code, ok := openrouter.HTTPStatusCode(err); ok {
		return code >= 500 || code == http.StatusNotFound ||
			slices.Contains(openrouter.DefaultChatCompletionFallbackErrorCodes(), code)
	}
	var ne net.Error
	var se *json.SyntaxError
	var ce *choiceError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &se) || errors.Is(err, errNoChoices) || errors.Is(err, errStreamCut)
}

// describeProviderError is one line for operators and API callers; it never
// carries our credentials (the client does not echo them) and is kept short.
func describeProviderError(err error) string {
	var msg string
	var apiErr *openrouter.APIError
	var reqErr *openrouter.RequestError
	switch {
	case errors.As(err, &apiErr):
		msg = fmt.Sprintf("HTTP %d: %s", apiErr.HTTPStatusCode, apiErr.Error())
	case errors.As(err, &reqErr):
		// Err is the unreadable body or how reading it failed; neither helps a caller.
		msg = fmt.Sprintf("HTTP %d", reqErr.HTTPStatusCode)
	case errors.As(err, new(*streamBroken)):
		msg = "the stream broke after part of the answer was sent"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out"
	case errors.As(err, new(*choiceError)), errors.Is(err, errStreamCut), errors.Is(err, errNoChoices):
		msg = err.Error()
	case errors.As(err, new(net.Error)), errors.As(err, new(*url.Error)),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Dial and transport errors name hosts, ports and paths: ours to
		// know, not the caller's.
		msg = "the model provider could not be reached or dropped the connection"
	default:
		msg = "the model provider's answer could not be read"
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
