package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	openrouter "github.com/revrost/go-openrouter"
)

// complete runs req down the model chain, walking it again after a pause
// when every model failed in a way a moment may cure.
func (p *provider) complete(ctx context.Context, req openrouter.ChatCompletionRequest) (openrouter.ChatCompletionResponse, error) {
	return p.retry(ctx, func() (openrouter.ChatCompletionResponse, error) { return p.walk(ctx, req) })
}

// stream is complete, streaming. A walk that already sent text to the
// caller is never repeated: the caller would see the answer twice.
func (p *provider) stream(ctx context.Context, req openrouter.ChatCompletionRequest, onText func(string)) (openrouter.ChatCompletionResponse, error) {
	return p.retry(ctx, func() (openrouter.ChatCompletionResponse, error) { return p.walkStream(ctx, req, onText) })
}

// retry repeats a walk of the chain up to Config.ChainPasses times, with
// exponential backoff and jitter, while the last failure was transient
// (rate limits, overload, a gateway error, a dropped connection). OpenRouter
// already falls back between the models on its side; this covers the
// moments when it, or the way to it, is briefly unwell. It always returns
// the chain's own error, so callers can tell what failed.
func (p *provider) retry(ctx context.Context, walk func() (openrouter.ChatCompletionResponse, error)) (openrouter.ChatCompletionResponse, error) {
	var last error
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.cfg.RetryBackoff
	b.MaxInterval = 8 * p.cfg.RetryBackoff
	resp, err := backoff.Retry(ctx, func() (openrouter.ChatCompletionResponse, error) {
		resp, err := walk()
		last = err
		if err != nil && !transient(err) {
			return resp, backoff.Permanent(err)
		}
		return resp, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(p.cfg.ChainPasses)), backoff.WithMaxElapsedTime(0))
	if err != nil && last != nil {
		return resp, last // not the context's cause nor backoff's wrapper
	}
	return resp, err
}

// transient reports whether the chain's last failure may pass by itself.
func transient(err error) bool {
	var ce *chainError
	if !errors.As(err, &ce) {
		return false
	}
	last := ce.Attempts[len(ce.Attempts)-1].Err
	var sb *streamBroken
	if errors.As(last, &sb) || errors.Is(last, context.DeadlineExceeded) || errors.Is(last, context.Canceled) {
		// Text reached the caller, or time is what ran out: again would not help.
		return false
	}
	if code, ok := openrouter.HTTPStatusCode(last); ok {
		switch code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
			http.StatusGatewayTimeout, openrouter.StatusProviderOverloaded:
			return true
		}
		return false
	}
	return fallbackable(last)
}

// DefaultRetryBackoff is the first pause before the chain is walked again.
const DefaultRetryBackoff = 500 * time.Millisecond
