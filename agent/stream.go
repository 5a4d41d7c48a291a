package agent

import (
	"context"
	"errors"
	"io"
	"sort"

	openrouter "github.com/revrost/go-openrouter"
)

// errStreamCut is a stream that ended without a finish reason: the
// connection broke or the provider stopped mid-answer. The client library
// reports both as a plain end of stream, so the missing finish reason is
// the only sign.
var errStreamCut = errors.New("the model's stream ended before it finished")

// streamBroken is a stream that failed after some of its text reached the
// caller. Another model cannot take over without the caller seeing two
// answers spliced, so the chain stops here.
type streamBroken struct{ err error }

func (e *streamBroken) Error() string { return "stream broke after text was sent: " + e.err.Error() }
func (e *streamBroken) Unwrap() error { return e.err }

// walkStream runs req down the chain like walk, streaming: onText gets the
// model's text as it arrives. A model whose stream fails before any text
// was passed on is replaced by the next one; after that, the failure is a
// streamBroken and ends the chain.
func (p *provider) walkStream(ctx context.Context, req openrouter.ChatCompletionRequest, onText func(string)) (openrouter.ChatCompletionResponse, error) {
	ce := &chainError{}
	for i, model := range p.models {
		req.Model = model
		req.Models = nil
		if rest := p.models[i:]; len(rest) > 1 {
			req.Models = rest
		}
		req.Stream = true
		sent := false
		actx, cancel := context.WithTimeout(ctx, p.cfg.AttemptTimeout)
		resp, err := p.streamOne(actx, req, func(s string) { sent = true; onText(s) })
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			err = context.DeadlineExceeded // this attempt's deadline, whatever the reader saw
		}
		cancel()
		if err == nil {
			if resp.Model == "" {
				resp.Model = model
			}
			return resp, nil
		}
		if sent {
			err = &streamBroken{err: err}
		}
		ce.Attempts = append(ce.Attempts, attempt{Model: model, Err: err})
		if sent || ctx.Err() != nil || !fallbackable(err) {
			break
		}
	}
	return openrouter.ChatCompletionResponse{}, ce
}

// streamOne reads one model's stream to its end and assembles the turn as
// a non-streamed response would carry it.
func (p *provider) streamOne(ctx context.Context, req openrouter.ChatCompletionRequest, onText func(string)) (openrouter.ChatCompletionResponse, error) {
	s, err := p.client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return openrouter.ChatCompletionResponse{}, err
	}
	defer s.Close()
	var a assembler
	for {
		// The library ends every stream, broken or whole, with io.EOF.
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return openrouter.ChatCompletionResponse{}, err
		}
		if text := a.add(chunk); text != "" {
			onText(text)
		}
	}
	return a.response()
}

// assembler builds one turn from its chunks: text, tool calls whose
// arguments arrive in pieces, and reasoning_details (Gemini's signatures
// must be replayed whole on the next turn).
type assembler struct {
	model   string
	text    []byte
	calls   map[int]*openrouter.ToolCall
	details map[int]*openrouter.ChatCompletionReasoningDetails
	finish  openrouter.FinishReason
	native  string
	usage   *openrouter.Usage
	chunks  int
}

// add takes one chunk and returns the text it adds.
func (a *assembler) add(c openrouter.ChatCompletionStreamResponse) string {
	a.chunks++
	if c.Model != "" {
		a.model = c.Model
	}
	if c.Usage != nil {
		a.usage = c.Usage
	}
	var text string
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue // Veref asks for one choice
		}
		d := ch.Delta
		text += d.Content
		for i, tc := range d.ToolCalls {
			idx := i
			if tc.Index != nil {
				idx = *tc.Index
			}
			a.addCall(idx, tc)
		}
		for _, rd := range d.ReasoningDetails {
			a.addDetail(rd)
		}
		if ch.FinishReason != "" {
			a.finish, a.native = ch.FinishReason, ch.NativeFinishReason
		}
	}
	a.text = append(a.text, text...)
	return text
}

func (a *assembler) addCall(idx int, tc openrouter.ToolCall) {
	if a.calls == nil {
		a.calls = map[int]*openrouter.ToolCall{}
	}
	cur, ok := a.calls[idx]
	if !ok {
		cur = &openrouter.ToolCall{Type: openrouter.ToolTypeFunction}
		a.calls[idx] = cur
	}
	if tc.ID != "" {
		cur.ID = tc.ID
	}
	if tc.Type != "" {
		cur.Type = tc.Type
	}
	if cur.Function.Name == "" {
		cur.Function.Name = tc.Function.Name
	}
	cur.Function.Arguments += tc.Function.Arguments
}

func (a *assembler) addDetail(rd openrouter.ChatCompletionReasoningDetails) {
	if a.details == nil {
		a.details = map[int]*openrouter.ChatCompletionReasoningDetails{}
	}
	cur, ok := a.details[rd.Index]
	if !ok {
		c := rd
		a.details[rd.Index] = &c
		return
	}
	cur.Text += rd.Text
	cur.Summary += rd.Summary
	cur.Data += rd.Data
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&cur.ID, rd.ID}, {&cur.Format, rd.Format}, {&cur.Signature, rd.Signature}, {(*string)(&cur.Type), string(rd.Type)},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
}

// response is the assembled turn, or why there is none.
func (a *assembler) response() (openrouter.ChatCompletionResponse, error) {
	switch {
	case a.finish == "error":
		return openrouter.ChatCompletionResponse{}, &choiceError{native: a.native}
	case a.finish == "" && a.chunks == 0:
		return openrouter.ChatCompletionResponse{}, errNoChoices
	case a.finish == "":
		return openrouter.ChatCompletionResponse{}, errStreamCut
	}
	msg := openrouter.ChatCompletionMessage{Role: openrouter.ChatMessageRoleAssistant,
		Content: openrouter.Content{Text: string(a.text)}}
	for _, i := range sortedKeys(a.calls) {
		msg.ToolCalls = append(msg.ToolCalls, *a.calls[i])
	}
	for _, i := range sortedKeys(a.details) {
		msg.ReasoningDetails = append(msg.ReasoningDetails, *a.details[i])
	}
	return openrouter.ChatCompletionResponse{Model: a.model, Usage: a.usage, Choices: []openrouter.ChatCompletionChoice{{
		Message: msg, FinishReason: a.finish, NativeFinishReason: a.native,
	}}}, nil
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
