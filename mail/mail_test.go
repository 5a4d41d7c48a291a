package mail

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smtpRelay is a minimal SMTP server speaking just enough of RFC 5321 for
// one message, standing in for the relay we cannot reach from tests.
func smtpRelay(t *testing.T, stall bool) (addr string, got func() string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var data strings.Builder
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if stall {
					time.Sleep(time.Minute) // accepts, then never greets
					return
				}
				r := bufio.NewReader(conn)
				say := func(s string) { _, _ = conn.Write([]byte(s + "\r\n")) }
				say("220 relay.test ESMTP")
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if inData {
						if line == ".\r\n" {
							inData = false
							say("250 queued")
							continue
						}
						mu.Lock()
						data.WriteString(line)
						mu.Unlock()
						continue
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						say("250 relay.test")
					case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
						say("250 ok")
					case cmd == "DATA":
						inData = true
						say("354 go ahead")
					case cmd == "QUIT":
						say("221 bye")
						return
					default:
						say("502 not implemented")
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() string { mu.Lock(); defer mu.Unlock(); return data.String() }
}

func TestSMTPMailerDelivers(t *testing.T) {
	addr, got := smtpRelay(t, false)
	m := SMTPMailer{Addr: addr, From: "refs@veref.test"}
	require.NoError(t, m.Send(context.Background(), Message{ID: "out_1", To: "walter@example.com", Subject: "Reference request for Dana", Body: "Hello\nLink: x"}))
	msg := got()
	assert.Contains(t, msg, "To: walter@example.com\r\n")
	assert.Contains(t, msg, "Subject: Reference request for Dana\r\n")
	assert.Contains(t, msg, "Link: x")
	assert.Contains(t, msg, "Message-ID: <out_1@veref.test>\r\n", "derived from the outbox id, the same on every attempt")

	assert.ErrorContains(t, m.Send(context.Background(), Message{ID: "out_1", To: "a@example.com\r\nBcc: b@example.com", Subject: "s", Body: "b"}), "header injection")
}

func TestSMTPMailerGivesUpOnAStalledRelay(t *testing.T) {
	addr, _ := smtpRelay(t, true)
	m := SMTPMailer{Addr: addr, From: "refs@veref.test", Timeout: 200 * time.Millisecond}
	err := m.Send(context.Background(), Message{ID: "out_1", To: "walter@example.com", Subject: "s", Body: "b"})
	require.Error(t, err, "a relay that never answers must fail the send, not hang it")
}

func TestLogMailerKeepsPersonalDataOutOfTheLog(t *testing.T) {
	var logged []map[string]any
	m := LogMailer{Log: func(_, _ string, f map[string]any) { logged = append(logged, f) }}
	require.NoError(t, m.Send(context.Background(), Message{ID: "out_1", To: "wanda.referee@example.com", Subject: "Reference request for Carla Candidate", Body: "https://veref.test/v1/referee/secret"}))
	require.Len(t, logged, 1)
	line := fmt.Sprint(logged[0])
	assert.NotContains(t, line, "wanda.referee")
	assert.NotContains(t, line, "Carla")
	assert.NotContains(t, line, "secret")
	assert.Contains(t, line, "w***@example.com")
}
