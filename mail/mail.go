// Package mail delivers e-mail: through an SMTP relay, or to the log when
// no relay is configured. It knows nothing of the outbox that feeds it.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
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

// SMTPMailer sends through an SMTP relay with go-mail. Every step is
// bounded by Timeout (default 30 seconds), so a relay that stalls cannot hold
// the outbox worker, and with it a graceful shutdown, forever.
type SMTPMailer struct {
	Addr string // host:port
	From string
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN, which is only sent over TLS (or to localhost).
	Username, Password string
	Timeout            time.Duration
	// RootCAs verifies the relay's certificate; nil means the system's.
	RootCAs *x509.CertPool
}

// Send delivers one plain-text message, upgrading to TLS with STARTTLS when
// the relay offers it.
func (m SMTPMailer) Send(ctx context.Context, msg Message) error {
	if strings.ContainsAny(msg.To+msg.Subject+m.From, "\r\n") || strings.ContainsAny(msg.ID, "\r\n<>@ ") {
		return fmt.Errorf("refusing header injection")
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	em := gomail.NewMsg()
	if err := em.From(m.From); err != nil {
		return err
	}
	if err := em.To(msg.To); err != nil {
		return err
	}
	em.Subject(msg.Subject)
	em.SetMessageIDWithValue(strings.Trim(MessageID(msg.ID, m.From), "<>"))
	em.SetDate()
	em.SetBodyString(gomail.TypeTextPlain, msg.Body)
	return c.DialAndSendWithContext(ctx, em)
}

func (m SMTPMailer) client() (*gomail.Client, error) {
	host, portText, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP address %q: %w", m.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("SMTP address %q: bad port", m.Addr)
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout),
		gomail.WithTLSPolicy(gomail.TLSOpportunistic),
		gomail.WithTLSConfig(&tls.Config{ServerName: host, RootCAs: m.RootCAs, MinVersion: tls.VersionTLS12})}
	if m.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(m.Username), gomail.WithPassword(m.Password))
	}
	return gomail.NewClient(host, opts...)
}
