package agent

import (
	"encoding/json"
	"fmt"

	openrouter "github.com/revrost/go-openrouter"
)

// transcriptVersion tags the stored shape so a later change can migrate
// old conversations instead of misreading them.
const transcriptVersion = 1

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
}

func encodeTranscript(msgs []openrouter.ChatCompletionMessage) ([]byte, error) {
	return json.Marshal(transcript{V: transcriptVersion, Messages: trimHistory(msgs)})
}

func decodeTranscript(b []byte) ([]openrouter.ChatCompletionMessage, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var t transcript
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("agent: stored conversation is not readable: %w", err)
	}
	if t.V != transcriptVersion {
		return nil, fmt.Errorf("agent: stored conversation has version %d, want %d", t.V, transcriptVersion)
	}
	return t.Messages, nil
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
