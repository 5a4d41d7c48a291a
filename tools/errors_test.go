package tools_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/problem"
	"github.com/verefwork/veref/store"
	"github.com/verefwork/veref/tools"
)

func TestErrorProblem(t *testing.T) {
	e := tools.Invalid("answers[0].text", "too long")
	e.AuditID, e.Hint = "evt_1", "shorten it"
	p := e.Problem()
	assert.Equal(t, problem.InvalidInput, p.Code)
	assert.Equal(t, http.StatusUnprocessableEntity, p.Status)
	assert.Equal(t, "too long", p.Detail)
	assert.Equal(t, "shorten it", p.Hint)
	assert.Equal(t, "evt_1", p.AuditID)
	if assert.Len(t, p.Errors, 1) {
		assert.Equal(t, "body.answers[0].text", p.Errors[0].Location)
	}

	// Auth and store errors map through AsError the same way everywhere.
	for err, status := range map[error]int{
		&auth.Error{Code: problem.ScopeMissing, Detail: "no"}: http.StatusForbidden,
		fmt.Errorf("get: %w", store.ErrNotFound):              http.StatusNotFound,
		fmt.Errorf("tx: %w", store.ErrUnavailable):            http.StatusServiceUnavailable,
		context.DeadlineExceeded:                              http.StatusServiceUnavailable,
		fmt.Errorf("boom"):                                    http.StatusInternalServerError,
	} {
		assert.Equal(t, status, tools.AsError(err).Problem().Status, err.Error())
	}
}
