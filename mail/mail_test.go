package mail_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/mail/mailtest"
)

func TestSMTPMailerDelivers(t *testing.T) {
	relay := mailtest.NewRelay(t)
	m := mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test"}
	require.NoError(t, m.Send(context.Background(), mail.Message{ID: "out_1", To: "walter@example.com", Subject: "Reference request for Dana", Body: "Hello\nLink: x"}))
	got := relay.Messages()
	require.Len(t, got, 1)
	msg := got[0]
	assert.Equal(t, "refs@veref.test", msg.From)
	assert.Equal(t, []string{"walter@example.com"}, msg.To)
	assert.Equal(t, "<walter@example.com>", msg.Header("To"))
	assert.Equal(t, "Reference request for Dana", msg.Header("Subject"))
	assert.Equal(t, "Hello\nLink: x", msg.Body())
	assert.Equal(t, "<out_1@veref.test>", msg.Header("Message-ID"), "derived from the outbox id, the same on every attempt")
	assert.False(t, msg.TLS, "the relay offered no STARTTLS")
	assert.Empty(t, msg.Auth, "no credentials configured")

	// A second attempt at the same message carries the same Message-ID.
	require.NoError(t, m.Send(context.Background(), mail.Message{ID: "out_1", To: "walter@example.com", Subject: "s", Body: "b"}))
	assert.Equal(t, "<out_1@veref.test>", relay.Messages()[1].Header("Message-ID"))

	for _, bad := range []mail.Message{
		{ID: "out_1", To: "a@example.com\r\nBcc: b@example.com", Subject: "s", Body: "b"},
		{ID: "out_1", To: "a@example.com", Subject: "s\r\nBcc: b@example.com", Body: "b"},
		{ID: "out_1>\r\nBcc: b@example.com", To: "a@example.com", Subject: "s", Body: "b"},
	} {
		assert.ErrorContains(t, m.Send(context.Background(), bad), "header injection")
	}
	assert.Len(t, relay.Messages(), 2, "nothing refused reached the relay")
}

func TestSMTPMailerUpgradesToTLSBeforeAuthenticating(t *testing.T) {
	server, roots := mailtest.TLS(t)
	relay := mailtest.NewRelay(t, mailtest.WithSTARTTLS(server))
	m := mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test", Username: "veref", Password: "s3cret", RootCAs: roots}
	require.NoError(t, m.Send(context.Background(), mail.Message{ID: "out_2", To: "walter@example.com", Subject: "s", Body: "b"}))
	got := relay.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS, "STARTTLS offered, so the message went over TLS")
	assert.Equal(t, "veref:s3cret", got[0].Auth, "credentials sent, after the upgrade")

	// A relay whose certificate is not trusted gets nothing.
	untrusting := mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test", Username: "veref", Password: "s3cret"}
	require.Error(t, untrusting.Send(context.Background(), mail.Message{ID: "out_3", To: "walter@example.com", Subject: "s", Body: "b"}))
	assert.Len(t, relay.Messages(), 1)
}

func TestSMTPMailerGivesUpOnAStalledRelay(t *testing.T) {
	relay := mailtest.NewRelay(t, mailtest.Stalled())
	m := mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test", Timeout: 200 * time.Millisecond}
	err := m.Send(context.Background(), mail.Message{ID: "out_1", To: "walter@example.com", Subject: "s", Body: "b"})
	require.Error(t, err, "a relay that never answers must fail the send, not hang it")
}

func TestLogMailerKeepsPersonalDataOutOfTheLog(t *testing.T) {
	var logged []map[string]any
	m := mail.LogMailer{Log: func(_, _ string, f map[string]any) { logged = append(logged, f) }}
	require.NoError(t, m.Send(context.Background(), mail.Message{ID: "out_1", To: "wanda.referee@example.com", Subject: "Reference request for Carla Candidate", Body: "https://veref.test/v1/referee/secret"}))
	require.Len(t, logged, 1)
	line := fmt.Sprint(logged[0])
	assert.NotContains(t, line, "wanda.referee")
	assert.NotContains(t, line, "Carla")
	assert.NotContains(t, line, "secret")
	assert.Contains(t, line, "w***@example.com")
}
