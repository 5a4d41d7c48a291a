// Package mailtest is a real SMTP relay for tests: a TCP listener speaking
// enough of RFC 5321 (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, NOOP,
// RSET, QUIT) for the SMTP client to deliver to it as to a real one.
package mailtest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
)

// Received is one message the relay accepted.
type Received struct {
	From string
	To   []string
	Data string // as sent, headers and encoded body
	TLS  bool   // delivered over a connection upgraded with STARTTLS
	Auth string // the PLAIN credentials given, "user:password", or ""
}

// Header returns the message's header called name, or "".
func (m Received) Header(name string) string {
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

// Body returns the decoded text of the message.
func (m Received) Body() string {
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		return ""
	}
	var r io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, _ := io.ReadAll(r)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// Relay is a listening SMTP server.
type Relay struct {
	Addr string // 127.0.0.1:port

	onMessage func(Received)
	tls       *tls.Config
	stall     bool
	close     func()
	closeOnce sync.Once

	mu   sync.Mutex
	msgs []Received
}

// Option configures a Relay.
type Option func(*Relay)

// WithSTARTTLS makes the relay offer STARTTLS with cfg's certificate.
func WithSTARTTLS(cfg *tls.Config) Option { return func(r *Relay) { r.tls = cfg } }

// OnMessage runs fn after each message is accepted and before the client
// hears so: the moment a relay has the message but the sender does not
// know it yet.
func OnMessage(fn func(Received)) Option { return func(r *Relay) { r.onMessage = fn } }

// Stalled makes the relay accept connections and never greet, as a relay
// that hangs does.
func Stalled() Option { return func(r *Relay) { r.stall = true } }

// NewRelay listens until the test ends.
func NewRelay(t testing.TB, opts ...Option) *Relay {
	t.Helper()
	r, err := Start(opts...)
	if err != nil {
		t.Fatalf("smtp relay: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// Start listens until Close, for a program outside tests (the fault
// runs of bench count the e-mails a crash sends twice with it).
func Start(opts ...Option) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{Addr: ln.Addr().String()}
	for _, o := range opts {
		o(r)
	}
	done := make(chan struct{})
	var conns sync.WaitGroup
	r.close = func() {
		close(done)
		ln.Close()
		conns.Wait()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				if r.stall {
					<-done
					return
				}
				go func() { <-done; c.Close() }()
				r.serve(c)
			}()
		}
	}()
	return r, nil
}

// Close stops listening and ends every connection.
func (r *Relay) Close() { r.closeOnce.Do(r.close) }

// Messages returns every message accepted so far, in order.
func (r *Relay) Messages() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.msgs...)
}

// Recipients lists the recipients of every accepted message, in order.
func (r *Relay) Recipients() []string {
	var out []string
	for _, m := range r.Messages() {
		out = append(out, m.To...)
	}
	return out
}

// session is one connection's state.
type session struct {
	conn net.Conn
	rd   *bufio.Reader
	cur  Received
}

func (s *session) say(line string) { _, _ = s.conn.Write([]byte(line + "\r\n")) }

func (r *Relay) serve(c net.Conn) {
	s := &session{conn: c, rd: bufio.NewReader(c)}
	s.say("220 relay.test ESMTP")
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			exts := []string{"relay.test", "AUTH PLAIN"}
			if r.tls != nil && !s.cur.TLS {
				exts = append(exts, "STARTTLS")
			}
			for i, e := range exts {
				sep := "-"
				if i == len(exts)-1 {
					sep = " "
				}
				s.say("250" + sep + e)
			}
		case "STARTTLS":
			if r.tls == nil {
				s.say("502 no TLS here")
				continue
			}
			s.say("220 go ahead")
			tc := tls.Server(c, r.tls)
			if tc.Handshake() != nil {
				return
			}
			s.conn, s.rd, s.cur = tc, bufio.NewReader(tc), Received{TLS: true}
		case "AUTH":
			s.auth(arg)
		case "MAIL":
			s.cur.From, s.cur.To = addrOf(arg), nil
			s.say("250 ok")
		case "RCPT":
			s.cur.To = append(s.cur.To, addrOf(arg))
			s.say("250 ok")
		case "DATA":
			if !r.data(s) {
				return
			}
		case "NOOP":
			s.say("250 ok")
		case "RSET":
			s.cur.From, s.cur.To = "", nil
			s.say("250 ok")
		case "QUIT":
			s.say("221 bye")
			return
		default:
			s.say("502 not implemented")
		}
	}
}

func (s *session) auth(arg string) {
	mech, resp, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") || resp == "" {
		s.say("504 only PLAIN with an initial response")
		return
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	parts := strings.Split(string(b), "\x00")
	if err != nil || len(parts) != 3 {
		s.say("501 malformed")
		return
	}
	s.cur.Auth = parts[1] + ":" + parts[2]
	s.say("235 ok")
}

// data reads a message up to its lone dot and accepts it; false when the
// connection broke.
func (r *Relay) data(s *session) bool {
	s.say("354 go ahead")
	var b strings.Builder
	for {
		l, err := s.rd.ReadString('\n')
		if err != nil {
			return false
		}
		if l == ".\r\n" {
			break
		}
		b.WriteString(strings.TrimPrefix(l, ".")) // undo dot-stuffing
	}
	m := s.cur
	m.To = append([]string(nil), s.cur.To...)
	m.Data = strings.TrimSuffix(b.String(), "\r\n") // that line break belongs to the terminator
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	if r.onMessage != nil {
		r.onMessage(m)
	}
	s.say("250 queued")
	return true
}

func addrOf(arg string) string {
	_, a, _ := strings.Cut(arg, ":")
	a, _, _ = strings.Cut(strings.TrimSpace(a), " ")
	return strings.Trim(a, "<>")
}
