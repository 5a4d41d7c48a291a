package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openrouter "github.com/revrost/go-openrouter"
	"github.com/stretchr/testify/require"
)

// fakeOpenRouter is a local OpenRouter speaking the OpenAI-style
// chat-completions wire format. Each test scripts its replies; every
// request is kept so tests can assert what the agent sent.
type fakeOpenRouter struct {
	t      testing.TB
	srv    *httptest.Server
	script func(n int, req captured) (int, any)

	mu       sync.Mutex
	requests []captured
}

// captured is one request as the fake received it.
type captured struct {
	Raw  []byte
	Map  map[string]any
	Req  openrouter.ChatCompletionRequest
	Auth string
	// Traceparent is the W3C trace context the call carried.
	Traceparent string
}

func newFakeOpenRouter(t testing.TB, script func(n int, req captured) (int, any)) *fakeOpenRouter {
	f := &fakeOpenRouter{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/chat/completions" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		c := captured{Raw: raw, Auth: r.Header.Get("Authorization"), Traceparent: r.Header.Get("traceparent")}
		if err := json.Unmarshal(raw, &c.Map); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		_ = json.Unmarshal(raw, &c.Req)
		f.mu.Lock()
		f.requests = append(f.requests, c)
		n := len(f.requests) - 1
		f.mu.Unlock()

		status, body := f.script(n, c)
		if status == 0 { // the script wants the call to hang until the client gives up
			<-r.Context().Done()
			return
		}
		if sr, ok := body.(streamReply); ok {
			writeStream(w, r, sr)
			return
		}
		if status == http.StatusOK && c.Req.Stream {
			writeStream(w, r, asStream(t, body))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenRouter) URL() string { return f.srv.URL }

func (f *fakeOpenRouter) Requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.requests...)
}

// Models lists the primary model of every request, in order.
func (f *fakeOpenRouter) Models() []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Req.Model)
	}
	return out
}

type fakeCall struct {
	ID, Name, Args string
}

func usage() map[string]any {
	return map[string]any{
		"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
		"completion_tokens_details": map[string]any{"reasoning_tokens": 7},
		"cost":                      0.0015,
	}
}

// toolCallsReply is an assistant turn asking for calls, optionally with
// Gemini-style reasoning_details.
func toolCallsReply(model string, details []map[string]any, calls ...fakeCall) map[string]any {
	tcs := make([]any, len(calls))
	for i, c := range calls {
		tcs[i] = map[string]any{"id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": c.Args}}
	}
	msg := map[string]any{"role": "assistant", "content": nil, "tool_calls": tcs}
	if details != nil {
		msg["reasoning_details"] = details
	}
	return map[string]any{"id": "gen-tools", "object": "chat.completion", "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": "tool_calls"}},
		"usage":   usage()}
}

func answerReply(model, text string) map[string]any {
	return map[string]any{"id": "gen-answer", "object": "chat.completion", "model": model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": text}}},
		"usage": usage()}
}

func errorReply(code int, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

// toolMessages returns the tool-result messages a request carried.
func (c captured) toolMessages() []openrouter.ChatCompletionMessage {
	var out []openrouter.ChatCompletionMessage
	for _, m := range c.Req.Messages {
		if m.Role == openrouter.ChatMessageRoleTool {
			out = append(out, m)
		}
	}
	return out
}

// toolNames lists the functions a request offered the model.
func (c captured) toolNames() []string {
	var out []string
	for _, t := range c.Req.Tools {
		out = append(out, t.Function.Name)
	}
	return out
}

// lastToolContent is the most recent tool result the model was shown.
func (c captured) lastToolContent(t *testing.T) string {
	ms := c.toolMessages()
	require.NotEmpty(t, ms, "the request carried no tool result")
	return ms[len(ms)-1].Content.Text
}

func (c captured) contains(s string) bool { return strings.Contains(string(c.Raw), s) }

// streamReply is a scripted stream: each item is a chunk (written as one
// SSE data line and flushed), a channel the fake waits on before going on
// (so a test can hold the stream until the client has seen something), or
// cut, which drops the connection without finishing the stream.
type streamReply []any

type cutStream struct{}

var cut = cutStream{}

func writeStream(w http.ResponseWriter, r *http.Request, sr streamReply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_, _ = io.WriteString(w, ": OPENROUTER PROCESSING\n\n")
	_ = rc.Flush()
	for _, item := range sr {
		switch x := item.(type) {
		case chan struct{}:
			select {
			case <-x:
			case <-r.Context().Done():
				return
			}
		case cutStream:
			panic(http.ErrAbortHandler) // the connection drops mid-stream
		case time.Duration:
			time.Sleep(x) // a model thinking between tokens (benchmarks only)
		default:
			b, _ := json.Marshal(x)
			_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
			_ = rc.Flush()
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

func chunk(model string, delta map[string]any, finish string) map[string]any {
	choice := map[string]any{"index": 0, "delta": delta}
	if finish != "" {
		choice["finish_reason"] = finish
	}
	return map[string]any{"id": "gen-stream", "object": "chat.completion.chunk", "model": model, "choices": []any{choice}}
}

// asStream turns a scripted non-streamed reply into the chunks OpenRouter
// would stream for it: text line by line, each tool call's arguments in two
// pieces after its name, reasoning_details, then the finish reason and usage.
func asStream(t testing.TB, body any) streamReply {
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	var resp openrouter.ChatCompletionResponse
	require.NoError(t, json.Unmarshal(raw, &resp))
	require.NotEmpty(t, resp.Choices, "a streamed reply needs a choice")
	ch := resp.Choices[0]
	m := ch.Message
	sr := streamReply{chunk(resp.Model, map[string]any{"role": "assistant"}, "")}
	if len(m.ReasoningDetails) > 0 {
		sr = append(sr, chunk(resp.Model, map[string]any{"reasoning_details": m.ReasoningDetails}, ""))
	}
	for _, line := range strings.SplitAfter(m.Content.Text, "\n") {
		if line != "" {
			sr = append(sr, chunk(resp.Model, map[string]any{"content": line}, ""))
		}
	}
	for i, tc := range m.ToolCalls {
		args := tc.Function.Arguments
		half := len(args) / 2
		sr = append(sr,
			chunk(resp.Model, map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": tc.ID, "type": "function",
				"function": map[string]any{"name": tc.Function.Name, "arguments": args[:half]}}}}, ""),
			chunk(resp.Model, map[string]any{"tool_calls": []any{map[string]any{"index": i,
				"function": map[string]any{"arguments": args[half:]}}}}, ""))
	}
	last := chunk(resp.Model, map[string]any{}, string(ch.FinishReason))
	if ch.NativeFinishReason != "" {
		last["choices"].([]any)[0].(map[string]any)["native_finish_reason"] = ch.NativeFinishReason
	}
	if resp.Usage != nil {
		last["usage"] = resp.Usage
	}
	return append(sr, last)
}
