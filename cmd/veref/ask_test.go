package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/agent"
	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/tools"
)

// askWorld is a real server with Ask Veref talking to a local OpenRouter
// that streams a scripted model: it asks to rename the candidate (a
// destructive call), then answers with text carrying terminal escapes.
type askWorld struct {
	env       *apitest.Env
	key       string
	candidate string
	ten       store.Tenancy
}

func newAskWorld(t *testing.T) *askWorld {
	t.Helper()
	st := storetest.OpenSQLite(t)
	w := &askWorld{}
	var mu sync.Mutex
	calls := 0
	model := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct {
				Role string `json:"role"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		calls++
		mu.Unlock()
		rw.Header().Set("Content-Type", "text/event-stream")
		send := func(delta map[string]any, finish string) {
			ch := map[string]any{"index": 0, "delta": delta}
			if finish != "" {
				ch["finish_reason"] = finish
			}
			b, _ := json.Marshal(map[string]any{"id": "gen", "model": "m", "choices": []any{ch}})
			fmt.Fprintf(rw, "data: %s\n\n", b)
		}
		if last := req.Messages[len(req.Messages)-1].Role; last == "user" {
			send(map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"index": 0, "id": "c1", "type": "function",
				"function": map[string]any{"name": "candidates_update", "arguments": `{"id":"` + w.candidate + `","name":"Mallory"}`}}}}, "tool_calls")
		} else {
			send(map[string]any{"role": "assistant", "content": "Done.\x1b[2J\u202e hidden"}, "stop")
		}
		fmt.Fprint(rw, "data: [DONE]\n\n")
	}))
	t.Cleanup(model.Close)
	w.env = apitest.New(t, st, apitest.Options{Agent: func(reg *tools.Registry) http.Handler {
		return agent.NewHandler(reg, st, agent.Config{APIKey: "sk-or-test", BaseURL: model.URL, Models: []string{"m"}})
	}})
	w.env.Tenant("acme")
	w.key = w.env.Key("acme", auth.Live)
	w.ten = store.TenancyOf(w.env.Principal(w.key))
	now := time.Now().UTC()
	w.candidate = store.NewID("cand")
	require.NoError(t, st.InsertCandidate(context.Background(), w.ten, store.Candidate{ID: w.candidate, Name: "Carol",
		CreatedAt: now, UpdatedAt: now}))
	return w
}

func (w *askWorld) vars() map[string]string {
	return map[string]string{"VEREF_API_KEY": w.key, "VEREF_API_URL": w.env.URL}
}

func (w *askWorld) name(t *testing.T) string {
	c, err := w.env.Store.GetCandidate(context.Background(), w.ten, w.candidate)
	require.NoError(t, err)
	return c.Name
}

var approveCmd = regexp.MustCompile(`veref ask --conversation (conv_\w+) --approve (call_\w+)`)

func TestAskOffATerminalExitsThreeWithTheApproveCommand(t *testing.T) {
	w := newAskWorld(t)
	out, errOut, code := runCLI(w.vars(), "ask", "rename Carol")
	require.Equal(t, exitApproval, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "Waiting for your approval")
	assert.Contains(t, out, "candidates_update")
	assert.Contains(t, out, `"name":"Mallory"`)
	assert.Contains(t, out, "cancels, revokes or overwrites")
	assert.Contains(t, errOut, "wait for approval")
	m := approveCmd.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, "Carol", w.name(t), "nothing ran")

	// The printed command does what it says.
	out, errOut, code = runCLI(w.vars(), "ask", "--conversation", m[1], "--approve", m[2])
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "Mallory", w.name(t))
	assert.Contains(t, out, `Done.\x1b[2J\u202e hidden`, "the answer's control characters are shown, not obeyed")
	assert.NotContains(t, out, "\x1b")

	// Deciding again runs nothing and says so.
	_, errOut, code = runCLI(w.vars(), "ask", "--conversation", m[1], "--approve", m[2])
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "already decided")
}

func TestAskYesApprovesWhatItShows(t *testing.T) {
	w := newAskWorld(t)
	out, errOut, code := runCLI(w.vars(), "ask", "--yes", "rename Carol")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "candidates_update", "what is approved is shown first")
	assert.Equal(t, "Mallory", w.name(t))
}

// askOnPTY runs veref ask with a pseudo-terminal as stdin and stdout, and
// answers the first y/N prompt with reply.
func askOnPTY(t *testing.T, w *askWorld, reply string, args ...string) (string, int) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()

	var mu sync.Mutex
	var screen bytes.Buffer
	prompted, ended := make(chan struct{}), make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var promptOnce, endOnce sync.Once
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			s := screen.String()
			mu.Unlock()
			if strings.Contains(s, "[y/N]") {
				promptOnce.Do(func() { close(prompted) })
			}
			if strings.Contains(s, "--end--") {
				endOnce.Do(func() { close(ended) })
			}
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	var errOut bytes.Buffer
	go func() {
		done <- run(context.Background(), append([]string{"ask"}, args...), envOf(w.vars()), tty, tty, &errOut)
	}()

	var runErr error
	select {
	case <-prompted:
		_, err := io.WriteString(ptmx, reply+"\n")
		require.NoError(t, err)
		runErr = <-done
	case runErr = <-done:
	}
	// A marker after everything the command wrote: once the reader has
	// it, the screen is complete.
	_, _ = tty.Write([]byte("\n--end--\n"))
	<-ended
	mu.Lock()
	defer mu.Unlock()
	return screen.String() + errOut.String(), exitCode(runErr)
}

func TestAskOnATerminalAsksYesNo(t *testing.T) {
	t.Run("yes", func(t *testing.T) {
		w := newAskWorld(t)
		screen, code := askOnPTY(t, w, "y", "rename Carol")
		require.Equal(t, 0, code, screen)
		assert.Contains(t, screen, "Approve candidates_update")
		assert.Equal(t, "Mallory", w.name(t))
		assert.NotContains(t, screen, "\x1b[2J")
	})
	t.Run("default no", func(t *testing.T) {
		w := newAskWorld(t)
		screen, code := askOnPTY(t, w, "", "rename Carol")
		require.Equal(t, 0, code, screen)
		assert.Equal(t, "Carol", w.name(t))
		assert.Contains(t, screen, "DENIED")
	})
	t.Run("no-input", func(t *testing.T) {
		w := newAskWorld(t)
		screen, code := askOnPTY(t, w, "y", "--no-input", "rename Carol")
		assert.Equal(t, exitApproval, code, screen)
		assert.NotContains(t, screen, "[y/N]")
		assert.Regexp(t, approveCmd, screen)
		assert.Equal(t, "Carol", w.name(t))
	})
}

func TestAskJSONAndUsage(t *testing.T) {
	w := newAskWorld(t)
	out, errOut, code := runCLI(w.vars(), "ask", "--json", "rename Carol")
	require.Equal(t, exitApproval, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	var r askResponse
	require.NoError(t, json.Unmarshal([]byte(out), &r), "stdout is the JSON answer only: %s", out)
	assert.EqualValues(t, "requires_approval", r.Status)
	require.Len(t, r.PendingApprovals, 1)
	assert.Regexp(t, approveCmd, errOut, "the deciding command goes to stderr in JSON mode")
	assert.Equal(t, "Carol", w.name(t))

	_, errOut, code = runCLI(w.vars(), "ask", "--approve", r.PendingApprovals[0].CallID)
	assert.Equal(t, exitUsage, code, errOut)
	assert.Contains(t, errOut, "--conversation")

	out, errOut, code = runCLI(w.vars(), "ask", "--conversation", r.ConversationID, "--deny", r.PendingApprovals[0].CallID, "--note", "not today", "--json")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.EqualValues(t, "completed", r.Status)
	assert.Equal(t, "Carol", w.name(t))
}
