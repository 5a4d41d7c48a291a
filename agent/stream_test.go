package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
)

func names(events []sseEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Name)
	}
	return out
}

func deltaText(t *testing.T, e sseEvent) string {
	t.Helper()
	var d struct{ Text string }
	require.NoError(t, json.Unmarshal(e.Data, &d))
	return d.Text
}

// The fake holds the second half of the answer until the client has read
// the first delta. Without real streaming the first delta would only be
// written after the run, so the client could not see it while the model is
// still held: the run would time out instead. This proves order, not speed.
func TestStreamingDeltasReachTheClientWhileTheModelWrites(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, withKey(agent.Config{Timeout: 20 * time.Second}), func(n int, req captured) (int, any) {
		return 200, streamReply{
			chunk(modelPro, map[string]any{"role": "assistant", "content": "Hello "}, ""),
			release,
			chunk(modelPro, map[string]any{"content": "world"}, ""),
			chunk(modelPro, map[string]any{}, "stop"),
		}
	})
	key := h.Key("acme", auth.Test)

	body, _ := json.Marshal(map[string]any{"message": "greet me"})
	req, err := http.NewRequest("POST", h.URL+"/v1/api/agent", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	var events []sseEvent
	var released bool
	var block strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() != "" {
			block.WriteString(sc.Text() + "\n")
			continue
		}
		evs := parseSSE(t, block.String())
		block.Reset()
		for _, e := range evs {
			if e.Name == "answer_delta" && !released {
				// Seen while the model is still held: streamed.
				assert.Equal(t, "Hello ", deltaText(t, e))
				close(release)
				released = true
			}
			events = append(events, e)
		}
	}
	require.True(t, released, "no delta reached the client while the model was writing; events: %v", names(events))
	assert.Equal(t, []string{"step", "answer_delta", "answer_delta", "done"}, names(events))
	var done agent.Response
	require.NoError(t, json.Unmarshal(events[len(events)-1].Data, &done))
	assert.Equal(t, "Hello world", done.Answer)
	assert.EqualValues(t, agent.StatusCompleted, done.Status)
	reqs := h.fake.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, true, reqs[0].Map["stream"], "OpenRouter was asked to stream")
}

func TestJSONModeDoesNotStream(t *testing.T) {
	h := newHarness(t, withKey(agent.Config{}), func(n int, req captured) (int, any) {
		return 200, answerReply(modelPro, "plain")
	})
	res, out := h.ask(h.Key("acme", auth.Test), map[string]any{"message": "hi"})
	require.EqualValues(t, http.StatusOK, res.Status, string(res.Body))
	assert.Equal(t, "plain", out.Answer)
	assert.NotEqual(t, true, h.fake.Requests()[0].Map["stream"])
}

func TestStreamBrokenBeforeAnyTokenFallsBackToTheNextModel(t *testing.T) {
	h := newHarness(t, withKey(agent.Config{}), func(n int, req captured) (int, any) {
		if n == 0 {
			return 200, streamReply{chunk(modelPro, map[string]any{"role": "assistant"}, ""), cut}
		}
		return 200, answerReply(modelFlash, "from flash")
	})
	res, _ := h.ask(h.Key("acme", auth.Test), map[string]any{"message": "hi"}, "Accept", "text/event-stream")
	require.EqualValues(t, http.StatusOK, res.Status)
	events := parseSSE(t, string(res.Body))
	assert.Equal(t, []string{"step", "answer_delta", "done"}, names(events))
	assert.Equal(t, "from flash", deltaText(t, events[1]))
	assert.Equal(t, []string{modelPro, modelFlash}, h.fake.Models())
}

func TestStreamBrokenMidAnswerIsAnErrorThenDone(t *testing.T) {
	h := newHarness(t, withKey(agent.Config{}), func(n int, req captured) (int, any) {
		if n == 0 {
			return 200, toolCallsReply(modelPro, nil, fakeCall{"call_1", "whoami", "{}"})
		}
		return 200, streamReply{chunk(modelPro, map[string]any{"role": "assistant", "content": "You are acme"}, ""), cut}
	})
	res, _ := h.ask(h.Key("acme", auth.Test), map[string]any{"message": "who am I"}, "Accept", "text/event-stream")
	require.EqualValues(t, http.StatusOK, res.Status)
	events := parseSSE(t, string(res.Body))
	assert.Equal(t, []string{"step", "tool_call", "tool_result", "step", "answer_delta", "error", "done"}, names(events))
	assert.Len(t, h.fake.Requests(), 2, "text reached the caller: no other model may splice its own answer on")

	var p map[string]any
	require.NoError(t, json.Unmarshal(events[5].Data, &p))
	assert.EqualValues(t, problem.AgentProviderError, p["code"])
	assert.Contains(t, p["detail"], "stream broke")
	calls, _ := p["toolCalls"].([]any)
	assert.Len(t, calls, 1, "the error says what was done")
	assert.NotEmpty(t, p["conversationId"])
	var done agent.Response
	require.NoError(t, json.Unmarshal(events[6].Data, &done))
	assert.EqualValues(t, agent.StatusFailed, done.Status)
	assert.Equal(t, p["conversationId"], done.ConversationID)
}

func TestStreamedToolCallsAndReasoningAreAssembled(t *testing.T) {
	h := newHarness(t, withKey(agent.Config{}), func(n int, req captured) (int, any) {
		if n == 1 {
			return 200, answerReply(modelPro, "done")
		}
		idx := func(i int) map[string]any { return map[string]any{"index": i} }
		call := func(i int, fields map[string]any) map[string]any {
			m := idx(i)
			for k, v := range fields {
				m[k] = v
			}
			return map[string]any{"tool_calls": []any{m}}
		}
		return 200, streamReply{
			chunk(modelPro, map[string]any{"role": "assistant", "reasoning_details": []any{
				map[string]any{"type": "reasoning.text", "text": "I should ", "index": 0}}}, ""),
			chunk(modelPro, map[string]any{"reasoning_details": []any{
				map[string]any{"type": "reasoning.text", "text": "look.", "index": 0},
				map[string]any{"type": "reasoning.encrypted", "data": "c2ln", "id": "call_a", "format": "google-gemini-v1", "index": 1}}}, ""),
			chunk(modelPro, call(0, map[string]any{"id": "call_a", "type": "function", "function": map[string]any{"name": "candidates_list", "arguments": `{"li`}}), ""),
			chunk(modelPro, call(1, map[string]any{"id": "call_b", "type": "function", "function": map[string]any{"name": "whoami", "arguments": ""}}), ""),
			chunk(modelPro, call(0, map[string]any{"function": map[string]any{"arguments": `mit":2}`}}), ""),
			chunk(modelPro, call(1, map[string]any{"function": map[string]any{"arguments": `{}`}}), "tool_calls"),
		}
	})
	res, _ := h.ask(h.Key("acme", auth.Test), map[string]any{"message": "x"}, "Accept", "text/event-stream")
	require.EqualValues(t, http.StatusOK, res.Status)
	events := parseSSE(t, string(res.Body))
	var done agent.Response
	require.NoError(t, json.Unmarshal(events[len(events)-1].Data, &done))
	require.Len(t, done.ToolCalls, 2)
	assert.Equal(t, "candidates_list", done.ToolCalls[0].Name)
	assert.JSONEq(t, `{"limit":2}`, string(done.ToolCalls[0].Arguments))
	assert.EqualValues(t, agent.OutcomeOK, done.ToolCalls[0].Outcome)
	assert.Equal(t, "whoami", done.ToolCalls[1].Name)
	assert.EqualValues(t, agent.OutcomeOK, done.ToolCalls[1].Outcome)

	// The next turn replays the assembled call and reasoning.
	reqs := h.fake.Requests()
	require.Len(t, reqs, 2)
	var replayed map[string]any
	for _, m := range reqs[1].Map["messages"].([]any) {
		if msg := m.(map[string]any); msg["role"] == "assistant" {
			replayed = msg
		}
	}
	require.NotNil(t, replayed)
	b, _ := json.Marshal(replayed["reasoning_details"])
	assert.JSONEq(t, `[{"type":"reasoning.text","text":"I should look.","index":0},
		{"type":"reasoning.encrypted","data":"c2ln","id":"call_a","format":"google-gemini-v1","index":1}]`, string(b))
	calls := replayed["tool_calls"].([]any)
	require.Len(t, calls, 2)
	assert.Equal(t, `{"limit":2}`, calls[0].(map[string]any)["function"].(map[string]any)["arguments"])
}

func TestUnreachableProviderNamesNoAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	h := newHarness(t, withKey(agent.Config{BaseURL: "http://" + addr + "/api/v1"}), func(int, captured) (int, any) {
		return 500, nil
	})
	key := h.Key("acme", auth.Test)
	for _, accept := range []string{"application/json", "text/event-stream"} {
		res, _ := h.ask(key, map[string]any{"message": "hi"}, "Accept", accept)
		body := string(res.Body)
		assert.Contains(t, body, problem.AgentProviderError, accept)
		for _, leak := range []string{addr, "127.0.0.1", "dial", "/api/v1", "http://"} {
			assert.NotContains(t, body, leak, accept)
		}
	}
}
