package agent

import (
	"encoding/json"
	"fmt"
	"slices"

	openrouter "github.com/revrost/go-openrouter"

	"github.com/verefwork/veref/tools"
)

// transcriptVersion tags the stored shape so a later change can migrate
// old conversations instead of misreading them. Version 1 had no Tools;
// version 2 no Pending or Decided.
const transcriptVersion = 3

// maxHistoryMessages bounds what a continued conversation replays to the
// model; the token budget would otherwise be spent on old turns.
const maxHistoryMessages = 60

// transcript is Conversation.Messages: the provider messages of every turn,
// without the system prompt, which is rebuilt on each run so prompt changes
// apply to old conversations too. Assistant messages keep their
// reasoning_details, which Gemini needs to see again on later turns.
type transcript struct {
	V        int                                `json:"v"`
	Messages []openrouter.ChatCompletionMessage `json:"messages"`
	// Tools names every tool whose output the history holds. Another key
	// of the same recruiter may continue the conversation only if its
	// scopes allow all of them: replaying the history must not show a
	// narrower key what a broader one read.
	Tools []string `json:"tools,omitempty"`
	// Pending are calls of the last turn waiting for approval; the
	// messages hold no result for them yet.
	Pending []pendingCall `json:"pending,omitempty"`
	// Decided remembers recent decisions, so a repeat runs nothing.
	Decided []decidedCall `json:"decided,omitempty"`
}

func encodeTranscript(t transcript) ([]byte, error) {
	t.V = transcriptVersion
	t.Messages = trimHistory(t.Messages)
	if n := len(t.Decided); n > maxDecided {
		t.Decided = t.Decided[n-maxDecided:]
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return tools.RedactLinks(b), nil
}

func decodeTranscript(b []byte) (transcript, error) {
	var t transcript
	if len(b) == 0 {
		return t, nil
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("agent: stored conversation is not readable: %w", err)
	}
	switch t.V {
	case transcriptVersion, 2:
	case 1:
		// Version 1 kept no list of the tools whose output it holds; every
		// tool the model called counts, so no narrower key reads it.
		for _, m := range t.Messages {
			for _, tc := range m.ToolCalls {
				if !slices.Contains(t.Tools, tc.Function.Name) {
					t.Tools = append(t.Tools, tc.Function.Name)
				}
			}
		}
	default:
		return t, fmt.Errorf("agent: stored conversation has version %d, want %d", t.V, transcriptVersion)
	}
	return t, nil
}

// trimHistory drops the oldest turns, cutting only before a user message so
// no tool result is left without the assistant call it answers.
func trimHistory(msgs []openrouter.ChatCompletionMessage) []openrouter.ChatCompletionMessage {
	if len(msgs) <= maxHistoryMessages {
		return msgs
	}
	for i := len(msgs) - maxHistoryMessages; i < len(msgs); i++ {
		if msgs[i].Role == openrouter.ChatMessageRoleUser {
			return msgs[i:]
		}
	}
	// One enormous turn: keep it whole rather than break its pairs.
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == openrouter.ChatMessageRoleUser {
			return msgs[i:]
		}
	}
	return msgs
}
