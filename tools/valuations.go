package tools

import (
	"context"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/store"
)

// ValuationsListInput filters the list.
type ValuationsListInput struct {
	Paging
	RequestID string `json:"requestId,omitempty" query:"requestId" maxLength:"100"`
	Status    string `json:"status,omitempty" query:"status" enum:"queued,running,succeeded,failed"`
}

func (c *catalogue) valuations() {
	Add(c.r, Spec{
		Name: "valuations_list", Title: "List valuations",
		Description: "Lists valuation runs, newest first; filter by requestId or status (queued, running, succeeded, failed).",
		Policy:      auth.Reads(auth.ValuationsRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/valuations"}, Target: "valuation",
	}, func(ctx context.Context, p auth.Principal, in ValuationsListInput) (List[store.Valuation], error) {
		rows, next, err := Q(ctx).ListValuations(ctx, store.TenancyOf(p), store.ValuationFilter{RequestID: in.RequestID, Status: store.ValuationStatus(in.Status)}, in.page())
		return listOf(rows, next), err
	})
	Add(c.r, Spec{
		Name: "valuations_get", Title: "Get a valuation",
		Description: "Returns a valuation run. Poll it after valuations_run until status is succeeded (with score 0 to 100, components and rationale) or failed.",
		Policy:      auth.Reads(auth.ValuationsRead), ReadOnly: true, Idempotent: true,
		HTTP: Binding{Method: "GET", Path: "/valuations/{id}"}, Target: "valuation",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (store.Valuation, error) {
		v, err := Q(ctx).GetValuation(ctx, store.TenancyOf(p), in.ID)
		return v, notFound(err, "valuation", in.ID)
	})
	Add(c.r, Spec{
		Name: "valuations_run", Title: "Run a valuation",
		Description: "Queues a valuation of a reference request's answers and returns at once with status queued; poll valuations_get for the result. Needs at least one answer.",
		Policy:      auth.AnyOf(auth.ValuationsWrite), Mutates: true,
		HTTP: Binding{Method: "POST", Path: "/references/{id}/valuations", Status: 202}, Target: "valuation",
	}, func(ctx context.Context, p auth.Principal, in IDInput) (store.Valuation, error) {
		q, ten, now := Q(ctx), store.TenancyOf(p), c.now()
		r, err := q.GetReference(ctx, ten, in.ID)
		if err != nil {
			return store.Valuation{}, notFound(err, "reference request", in.ID)
		}
		if !anyAnswered(r) {
			return store.Valuation{}, Conflict("no referee has answered yet; a valuation needs at least one response")
		}
		if !anyRated(r) {
			return store.Valuation{}, Conflict("the answers so far have no ratings; a valuation scores 1-5 ratings, so ask at least one rating question")
		}
		v := store.Valuation{ID: store.NewID("val"), TenantID: ten.TenantID, Environment: ten.Environment, RequestID: r.ID,
			Status: store.ValuationQueued, NextAttemptAt: now, CreatedAt: now}
		return v, q.InsertValuation(ctx, ten, v)
	})
}
