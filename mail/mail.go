// Package mail delivers e-mail: through an SMTP relay, or to the log when
// no relay is configured. It knows nothing of the outbox that feeds it.
package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Message is one e-mail. ID is the outbox id: it becomes the Message-ID,
// the same on every attempt, so a receiver (or its mail server) can drop
// the copy a retry sends after a send whose outcome was lost. Delivery is
// at least once; with this rule, duplicates are recognisable.
type Message struct {
	ID, To, Subject, Body string
}

// MessageID is the RFC 5322 Message-ID of an outbox message sent as from.
func MessageID(id, from string) string {
	_, domain, ok := strings.Cut(from, "@")
	if !ok || domain == "" {
		domain = "veref.invalid"
	}
	return "<" + id + "@" + strings.Trim(domain, "<> ") + ">"
}

// Mailer sends one e-mail.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer writes e-mails to the log instead of sending them: the default,
// and always what the test environment uses.
type LogMailer struct {
	Log func(level, msg string, fields map[string]any)
}

// Send logs that a message was due, without its body (which holds the
// single-use link) or subject (which names the candidate), and with the
// address masked: logs are kept longer and read by more people than the
// database.
func (m LogMailer) Send(_ context.Context, msg Message) error {
	if m.Log != nil {
		m.Log("info", "e-mail not sent (log mailer)", map[string]any{"to": MaskAddress(msg.To), "message": msg.ID})
	}
	return nil
}

// MaskAddress keeps enough of an e-mail address to tell messages apart in
// a log: the first letter and the domain (w***@example.com).
func MaskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

// SMTPMailer sends through an SMTP relay. Every step is bounded by Timeout
// (default 30 seconds), so a relay that stalls cannot hold the outbox worker,
// and with it a graceful shutdown, forever.
type SMTPMailer struct {
	Addr    string // host:port
	From    string
	Auth    smtp.Auth
	Timeout time.Duration
}

// Send delivers one plain-text message, upgrading to TLS when the relay offers it.
func (m SMTPMailer) Send(ctx context.Context, msg Message) error {
	to, subject, body := msg.To, msg.Subject, msg.Body
	if strings.ContainsAny(to+subject+m.From, "\r\n") {
		return fmt.Errorf("refusing header injection")
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if m.Auth != nil {
		if err := c.Auth(m.Auth); err != nil {
			return err
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if strings.ContainsAny(msg.ID, "\r\n<>@ ") {
		return fmt.Errorf("refusing header injection")
	}
	text := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: " + MessageID(msg.ID, m.From) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n")
	if _, err := wc.Write([]byte(text)); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}
