package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// askResponse is the part of agent.Response the CLI prints; --json prints
// the server's object as received, so fields added later still show.
type askResponse struct {
	ConversationID string `json:"conversationId"`
	Answer         string `json:"answer"`
	ToolCalls      []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"toolCalls"`
	Model      string `json:"model"`
	StopReason string `json:"stopReason"`
}

// askCmd runs `veref ask`. Flags may come before or after the question.
func (c *cli) askCmd() *cobra.Command {
	var conversation string
	var out output
	cmd := &cobra.Command{
		Use:   `ask "question"`,
		Short: "Ask Veref's agent a question about your reference checks",
		Long: `Asks Veref's agent (POST /v1/api/agent) with $VEREF_API_KEY, streams the
answer, then lists the operations it ran. Continue a thread with the
conversation id it prints.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := out.asJSON()
			if err != nil {
				return err
			}
			return cmdAsk(cmd.Context(), strings.Join(args, " "), conversation, c.apiURL, asJSON, c.getenv, c.stdout, c.stderr)
		},
	}
	c.apiURLFlag(cmd)
	cmd.Flags().StringVar(&conversation, "conversation", "", "continue this conversation id")
	out.flags(cmd.Flags(), true)
	return cmd
}

func cmdAsk(ctx context.Context, question, conversation, apiURL string, asJSON bool, getenv func(string) string, stdout, stderr io.Writer) error {
	question = strings.TrimSpace(question)
	if question == "" {
		return usageError{`veref ask needs a question, e.g. veref ask "which reference checks are waiting on referees?"`}
	}
	base, key, err := apiTarget(apiURL, getenv)
	if err != nil {
		return err
	}

	body, _ := json.Marshal(map[string]string{"message": question, "conversationId": strings.TrimSpace(conversation)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/api/agent", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ask: bad API URL %q: %w", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	// No client timeout: the server bounds every run and keeps the stream alive.
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask: cannot reach %s: %w", base, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return askHTTPError(res, base)
	}

	final, err := readAskStream(res.Body, func(event string, data []byte) {
		if asJSON {
			return
		}
		switch event {
		case "answer_delta":
			var d struct{ Text string }
			if json.Unmarshal(data, &d) == nil {
				fmt.Fprint(stdout, d.Text)
			}
		case "tool_call":
			var c struct{ Name string }
			if json.Unmarshal(data, &c) == nil {
				fmt.Fprintf(stderr, "· %s\n", c.Name)
			}
		}
	})
	if err != nil {
		return err
	}
	if asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, final, "", "  "); err != nil {
			return fmt.Errorf("ask: the server's answer is not JSON: %w", err)
		}
		out.WriteByte('\n')
		_, err := stdout.Write(out.Bytes())
		return err
	}
	var r askResponse
	if err := json.Unmarshal(final, &r); err != nil {
		return fmt.Errorf("ask: the server's answer is not readable: %w", err)
	}
	fmt.Fprintln(stdout)
	if len(r.ToolCalls) > 0 {
		fmt.Fprintln(stdout, "\nTool calls:")
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, c := range r.ToolCalls {
			line := "  " + c.Name + "\t" + c.Outcome
			if c.Error != "" {
				line += "\t" + c.Error
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	if r.StopReason != "" && r.StopReason != "answered" {
		fmt.Fprintf(stdout, "\nStopped early: %s\n", r.StopReason)
	}
	fmt.Fprintf(stdout, "\nConversation %s (continue with: veref ask --conversation %s \"…\")\n", r.ConversationID, r.ConversationID)
	return nil
}

// readAskStream reads server-sent events until `done` (whose data it
// returns) or `error` (returned as one line).
func readAskStream(body io.Reader, on func(event string, data []byte)) (json.RawMessage, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20) // `done` carries every tool call
	var event string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event != "" {
				payload := append([]byte(nil), data.Bytes()...)
				switch event {
				case "done":
					return payload, nil
				case "error":
					p := &problem{}
					if json.Unmarshal(payload, p) != nil || p.Code == "" {
						return nil, fmt.Errorf("ask: the server reported an error: %s", payload)
					}
					return nil, p
				}
				on(event, payload)
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"): // keep-alive comment
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ask: the answer stream broke: %w", err)
	}
	return nil, errors.New("ask: the server closed the stream before the answer was complete; try again")
}

// askHTTPError turns a refused request into one line, from problem+json
// when the server sent it.
func askHTTPError(res *http.Response, base string) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return problemFrom(res.StatusCode, base, b)
}
