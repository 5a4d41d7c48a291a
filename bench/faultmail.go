package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/verefwork/veref/mail"
)

// crashMidDrain queues f.mails invitation e-mails on a live key, SIGKILLs
// the server once the relay has about a third of them, restarts it and
// waits for the outbox to drain. Then it counts, by Message-ID, the
// e-mails the relay got twice and those marked sent it never got.
func (f *faultRun) crashMidDrain() error {
	before := len(f.relay.Messages())
	client := &http.Client{Timeout: time.Minute}
	for i := 0; i < f.mails; i += 10 {
		var refs []map[string]any
		for j := i; j < min(i+10, f.mails); j++ {
			refs = append(refs, map[string]any{"name": fmt.Sprintf("Referee %d", j), "email": fmt.Sprintf("referee-%d@faults.test", j), "relationship": "peer"})
		}
		body, _ := json.Marshal(map[string]any{"candidate": map[string]any{"name": fmt.Sprintf("Candidate %d", i)}, "referees": refs, "sendInvitations": true})
		h := bearer(f.liveKey)
		h["Content-Type"] = "application/json"
		st, err := send(f.ctx, client, request{url: "http://" + f.addr + "/v1/api/references", method: "POST", body: string(body), headers: h})
		if err != nil || st != 201 {
			return fmt.Errorf("queueing invitations: status %d, %v", st, err)
		}
	}
	queued := time.Now()
	for len(f.relay.Messages())-before < f.mails/3 {
		if time.Since(queued) > time.Minute {
			return fmt.Errorf("the outbox did not deliver %d e-mails in a minute", f.mails/3)
		}
		if err := f.pause(5 * time.Millisecond); err != nil {
			return err
		}
	}
	f.killedAt = time.Now()
	f.srv.kill()
	f.note("SIGKILL after %d of %d e-mails reached the relay", len(f.relay.Messages())-before, f.mails)
	if err := f.restart("mail"); err != nil {
		return err
	}
	restarted := time.Now()
	for {
		pending, err := f.outboxPending()
		if err != nil {
			return err
		}
		if pending == 0 {
			f.note("outbox drained %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
			break
		}
		if time.Since(restarted) > f.mailWait {
			f.note("outbox NOT drained %s after the restart: %d e-mails still pending", f.mailWait, pending)
			break
		}
		if err := f.pause(200 * time.Millisecond); err != nil {
			return err
		}
	}
	return f.countMail(before)
}

func (f *faultRun) outboxPending() (int, error) {
	conn, err := pgx.Connect(f.ctx, f.b.dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(f.ctx)
	var n int
	err = conn.QueryRow(f.ctx, "SELECT count(*) FROM outbox WHERE environment = 'live' AND sent_at IS NULL").Scan(&n)
	return n, err
}

// countMail compares the relay's messages since before with the live
// outbox: duplicates share a Message-ID; a message is lost when the
// outbox says sent and the relay never got it.
func (f *faultRun) countMail(before int) error {
	got := map[string]int{}
	for _, m := range f.relay.Messages()[before:] {
		got[m.Header("Message-ID")]++
	}
	conn, err := pgx.Connect(f.ctx, f.b.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(f.ctx)
	rows, err := conn.Query(f.ctx, "SELECT id, sent_at IS NOT NULL, attempts FROM outbox WHERE environment = 'live'")
	if err != nil {
		return err
	}
	var total, sent, lost, dupMsgs, dupCopies, pending, attempts int
	for rows.Next() {
		var id string
		var isSent bool
		var n int
		if err := rows.Scan(&id, &isSent, &n); err != nil {
			return err
		}
		total++
		attempts += n
		c := got[mail.MessageID(id, faultsFrom)]
		switch {
		case !isSent:
			pending++
		case c == 0:
			lost++
		default:
			sent++
		}
		if c > 1 {
			dupMsgs++
			dupCopies += c - 1
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	f.note("e-mails: %d queued, %d sent and received, %d relay deliveries in all; sent twice: %d messages (%d extra copies, each with its message's Message-ID); lost (marked sent, never received): %d; still pending: %d; attempts recorded %d",
		total, sent, len(f.relay.Messages())-before, dupMsgs, dupCopies, lost, pending, attempts)
	return nil
}
