package api_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/api/apitest"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/mail"
	"github.com/verefwork/veref/mail/mailtest"
	"github.com/verefwork/veref/store/storetest"
	"github.com/verefwork/veref/workers"
)

// refereeStates starts a request with one referee and invitations, and
// returns the referee's state as created and as read back.
func refereeStates(t *testing.T, e *apitest.Env, key, email string) (created, read string) {
	t.Helper()
	ref := expect(t, e.Do("POST", "/v1/api/references", key, map[string]any{
		"candidate": map[string]any{"name": "Dana", "role": "Chef"}, "referees": []any{refereeIn("Walt", email, "peer")}, "sendInvitations": true,
	}), 201)
	got := expect(t, e.Do("GET", "/v1/api/references/"+jstr(ref, "id"), key, nil), 200)
	return jstr(ref["referees"].([]any)[0], "state"), jstr(got["referees"].([]any)[0], "state")
}

// With live e-mail only logged (VEREF_MAIL=log), an invited live referee
// is "queued": nothing was delivered. (It said "sent".) With a relay it is
// "sent"; test keys say "sent" either way and never reach a relay.
func TestRefereeStateSaysQueuedWhenLiveMailIsOnlyLogged(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, logOnly := range []bool{true, false} {
				e := apitest.New(t, b.Open(t), apitest.Options{MailLogOnly: logOnly})
				e.Tenant("acme")
				want := "sent"
				if logOnly {
					want = "queued"
				}
				created, read := refereeStates(t, e, e.Key("acme", auth.Live), "live@example.com")
				assert.Equal(t, want, created, "live, log only: %v", logOnly)
				assert.Equal(t, want, read, "live, log only: %v", logOnly)
				created, read = refereeStates(t, e, e.Key("acme", auth.Test), "test@example.com")
				assert.Equal(t, "sent", created, "test keys, log only: %v", logOnly)
				assert.Equal(t, "sent", read)

				// Whatever the mode, the test environment's e-mail never reaches the relay.
				relay := mailtest.NewRelay(t)
				w := &workers.OutboxWorker{Store: e.Store, Live: mail.SMTPMailer{Addr: relay.Addr, From: "refs@veref.test"}}
				n, err := w.RunOnce(context.Background())
				require.NoError(t, err)
				assert.Equal(t, 2, n)
				assert.Equal(t, []string{"live@example.com"}, relay.Recipients())
			}
		})
	}
}
