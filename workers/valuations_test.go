package workers_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/workers"
)

// claimThen is a real store that runs after once a valuation is claimed:
// the moment to take storage away from the worker.
type claimThen struct {
	store.Store
	after func()
}

func (c claimThen) ClaimValuation(ctx context.Context, now, leaseUntil time.Time) (store.Valuation, error) {
	v, err := c.Store.ClaimValuation(ctx, now, leaseUntil)
	if err == nil {
		c.after()
	}
	return v, err
}

// answeredValuation stores a request a manager answered (ratings 5 and 4)
// and queues a valuation of it.
func answeredValuation(t *testing.T, st store.Store) (store.Tenancy, string) {
	t.Helper()
	ctx, now := context.Background(), time.Now().UTC()
	ten := store.Tenancy{TenantID: store.NewID("ten"), Environment: auth.Live}
	rec, cand := store.NewID("rec"), store.Candidate{ID: store.NewID("cand"), Name: "Dana", CreatedAt: now, UpdatedAt: now, Version: 1}
	require.NoError(t, st.CreateTenant(ctx, store.Tenant{ID: ten.TenantID, Name: "Acme", CreatedAt: now}))
	require.NoError(t, st.CreateRecruiter(ctx, store.Recruiter{ID: rec, TenantID: ten.TenantID, Email: "r@acme.test", CreatedAt: now}))
	require.NoError(t, st.InsertCandidate(ctx, ten, cand))
	req := store.ReferenceRequest{ID: store.NewID("req"), CandidateID: cand.ID, RecruiterID: rec, Status: store.RequestCompleted,
		Questions: []store.Question{{ID: "q1", Text: "Quality", Kind: "rating"}, {ID: "q2", Text: "Reliability", Kind: "rating"}},
		Referees: []store.Referee{{ID: store.NewID("rfe"), Name: "Walt", Email: "walt@example.com", Relationship: "manager", State: store.InviteResponded,
			Answers: []store.Answer{{QuestionID: "q1", Rating: 5}, {QuestionID: "q2", Rating: 4}}}},
		CreatedAt: now, UpdatedAt: now, Version: 1}
	require.NoError(t, st.InsertReference(ctx, ten, req))
	v := store.Valuation{ID: store.NewID("val"), TenantID: ten.TenantID, Environment: ten.Environment, RequestID: req.ID,
		Status: store.ValuationQueued, NextAttemptAt: now, CreatedAt: now}
	require.NoError(t, st.InsertValuation(ctx, ten, v))
	return ten, v.ID
}

// A worker whose storage goes away mid-run releases the run as soon as
// storage is back: it is finished (or queued again, if the outage spoiled
// the read), never left "running" for the rest of its minute-long lease.
func TestValuationIsReleasedAsSoonAsStorageIsBack(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st, outage, _ := b.open(t)
			ten, id := answeredValuation(t, st)
			var back sync.Once
			w := &workers.ValuationWorker{Store: claimThen{st, outage.Start}, Log: func(_, msg string, _ map[string]any) {
				if strings.HasPrefix(msg, "valuation: recording") {
					back.Do(outage.End) // storage returns after the first failed write
				}
			}}
			did, err := w.RunOnce(context.Background())
			require.True(t, did)
			v, gerr := st.GetValuation(context.Background(), ten, id)
			require.NoError(t, gerr)
			assert.NotEqual(t, store.ValuationRunning, v.Status, "released, not left running until the lease lapses")
			assert.Nil(t, v.LeaseUntil)
			require.NoError(t, err, "the outcome waits out the outage instead of failing")

			if v.Status == store.ValuationQueued { // the outage failed the read too: retried after its backoff
				did, err = (&workers.ValuationWorker{Store: st, Now: at(time.Minute)}).RunOnce(context.Background())
				require.True(t, did)
				require.NoError(t, err)
				v, err = st.GetValuation(context.Background(), ten, id)
				require.NoError(t, err)
			}
			assert.Equal(t, store.ValuationSucceeded, v.Status)
			require.NotNil(t, v.Score)
			assert.Equal(t, 87.5, *v.Score)
		})
	}
}
