package tools_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/verefwork/veref/tools"
)

func TestRequestMetaIsAValue(t *testing.T) {
	ctx := tools.WithRequestScope(context.Background(), &tools.RequestScope{Meta: tools.RequestMeta{TraceID: "t1"}})
	m := tools.RequestMetaFrom(ctx)
	m.TraceID = "changed by a handler"
	assert.Equal(t, "t1", tools.RequestMetaFrom(ctx).TraceID, "what the guard put in stays as it was")
	assert.Equal(t, tools.RequestMeta{}, tools.RequestMetaFrom(context.Background()))
}

func TestReportEndpoint(t *testing.T) {
	tools.ReportEndpoint(context.Background(), "nobody listens") // a no-op, not a panic

	s := &tools.RequestScope{}
	ctx := tools.WithRequestScope(context.Background(), s)
	assert.Empty(t, s.Endpoint())
	tools.ReportEndpoint(ctx, "mcp:initialize")
	tools.ReportEndpoint(context.WithValue(ctx, struct{}{}, 1), "mcp:tools/call:candidates_list")
	assert.Equal(t, "mcp:tools/call:candidates_list", s.Endpoint(), "the last name reported, through derived contexts")
}
