package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// waiter is --wait on an operation whose work finishes later: it polls the
// object until its status is final.
type waiter struct {
	on       bool
	interval time.Duration
	what     string          // "valuation"
	getPath  string          // e.g. /v1/api/valuations/{id}
	final    map[string]bool // statuses that end the wait
	failed   map[string]bool // final statuses that are an error (exit 1)
}

// waitable lists the operations that take --wait and what they wait for.
var waitable = map[string]waiter{
	"valuations_run": {what: "valuation", getPath: "/v1/api/valuations/{id}", interval: 2 * time.Second,
		final: map[string]bool{"succeeded": true, "failed": true}, failed: map[string]bool{"failed": true}},
	"references_start": {what: "reference request", getPath: "/v1/api/references/{id}", interval: 10 * time.Second,
		final: map[string]bool{"completed": true, "cancelled": true}, failed: map[string]bool{"cancelled": true}},
	"references_get": {what: "reference request", getPath: "/v1/api/references/{id}", interval: 10 * time.Second,
		final: map[string]bool{"completed": true, "cancelled": true}, failed: map[string]bool{"cancelled": true}},
}

func (c *cli) waitFlags(cmd *cobra.Command, op operation) *waiter {
	w, ok := waitable[op.tool.Name]
	if !ok {
		return nil
	}
	cmd.Flags().BoolVar(&w.on, "wait", false, "wait until the "+w.what+" is finished, showing progress on a terminal")
	cmd.Flags().DurationVar(&w.interval, "interval", w.interval, "how often --wait asks")
	return &w
}

// waitStatus is the part of a polled object --wait reads.
type waitStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// wait polls until the object in first reaches a final status and returns
// its last state. Invitation links a test key got once are carried over,
// since they cannot be fetched again.
func (c *cli) wait(ctx context.Context, client *apiClient, w *waiter, first json.RawMessage) (json.RawMessage, error) {
	var st waitStatus
	if err := json.Unmarshal(first, &st); err != nil || st.ID == "" {
		return first, fmt.Errorf("--wait: the answer has no id to follow")
	}
	if st.Status == "draft" {
		return first, fmt.Errorf("--wait: %s %s is a draft, so nothing will happen until invitations are sent (veref references send-invitations %s)", w.what, st.ID, st.ID)
	}
	progress := c.progress()
	start := time.Now()
	raw := first
	for !w.final[st.Status] {
		progress(fmt.Sprintf("waiting for %s %s: %s (%s)", w.what, st.ID, st.Status, time.Since(start).Round(time.Second)))
		select {
		case <-ctx.Done():
			progress("")
			return nil, ctx.Err()
		case <-time.After(w.interval):
		}
		next, err := client.do(ctx, "GET", replaceID(w.getPath, st.ID), nil, nil)
		if err != nil {
			progress("")
			return nil, err
		}
		raw = next
		if err := json.Unmarshal(raw, &st); err != nil {
			progress("")
			return nil, fmt.Errorf("--wait: the server's answer is not readable: %w", err)
		}
	}
	progress("")
	raw = carryLinks(first, raw)
	if w.failed[st.Status] {
		msg := fmt.Sprintf("%s %s %s", w.what, st.ID, st.Status)
		if st.Error != "" {
			msg += ": " + st.Error
		}
		return raw, fmt.Errorf("%s", msg)
	}
	return raw, nil
}

func replaceID(path, id string) string {
	return strings.Replace(path, "{id}", url.PathEscape(id), 1)
}

// carryLinks copies testInvitationLinks from the first answer into the last.
func carryLinks(first, last json.RawMessage) json.RawMessage {
	var f map[string]json.RawMessage
	var l map[string]json.RawMessage
	if json.Unmarshal(first, &f) != nil || json.Unmarshal(last, &l) != nil {
		return last
	}
	links, ok := f["testInvitationLinks"]
	if !ok {
		return last
	}
	if _, has := l["testInvitationLinks"]; has {
		return last
	}
	l["testInvitationLinks"] = links
	b, err := json.Marshal(l)
	if err != nil {
		return last
	}
	return b
}

// progress returns a function that rewrites one status line on a terminal
// (stderr) and does nothing otherwise; "" clears the line.
func (c *cli) progress() func(string) {
	if !isTerminal(c.stderr) {
		return func(string) {}
	}
	shown := false
	return func(line string) {
		if line == "" {
			if shown {
				fmt.Fprint(c.stderr, "\r\x1b[K")
			}
			return
		}
		shown = true
		fmt.Fprint(c.stderr, "\r\x1b[K"+cell(line))
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
