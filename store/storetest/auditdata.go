package storetest

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/verefwork/veref/store"
)

// HostileInputs are call inputs a backend may refuse to store as JSON or
// as text; audit rows must keep each of them anyway.
var HostileInputs = map[string]string{
	"plain":             `{"name":"Ann","n":1.5e3}`,
	"NUL escape":        `{"name":"A\u0000B"}`,
	"NUL in a key":      `{"na\u0000me":"A"}`,
	"lone high":         `{"name":"Bob\ud800"}`,
	"lone low":          `{"name":"\udc00Bob"}`,
	"reversed pair":     `{"name":"\udc00\ud800"}`,
	"valid pair":        `{"name":"\ud83d\ude00"}`,
	"escaped backslash": `{"name":"\\u0000 is fine"}`,
	"invalid UTF-8":     "{\"name\":\"Bob\xff\"}",
	"NUL byte":          "{\"name\":\"A\x00B\"}",
	"huge exponent":     `{"n":1e1000000}`,
	"tiny exponent":     `{"n":-1e-1000000}`,
	"not JSON":          `{"name":`,
	"true and false":    `{"a":true,"b":false,"c":null}`,
}

// AuditedInput decodes what data.input holds back into the bytes sent.
func AuditedInput(t testing.TB, data map[string]any) []byte {
	t.Helper()
	switch data["inputEncoding"] {
	case nil:
		b, err := json.Marshal(data["input"])
		require.NoError(t, err)
		return b
	case store.InputText:
		return []byte(data["input"].(string))
	case store.InputBase64:
		b, err := base64.StdEncoding.DecodeString(data["input"].(string))
		require.NoError(t, err)
		return b
	}
	t.Fatalf("unknown input encoding %v", data["inputEncoding"])
	return nil
}

func testAuditHostileInput(t *testing.T, f *fixture) {
	ctx, s := f.ctx, f.s
	for name, raw := range HostileInputs {
		ev := func() store.AuditEvent {
			input, enc := store.AuditInput([]byte(raw))
			data := map[string]any{"tool": "candidates_create", "input": input}
			if enc != "" {
				data["inputEncoding"] = enc
			}
			return store.AuditEvent{ID: store.NewID("evt"), TenantID: f.aLive.TenantID, Environment: f.aLive.Environment,
				ActorKind: store.ActorAPIKey, ActorID: "key_h", Surface: store.SurfaceMCP, Action: "candidates_create",
				Outcome: "INVALID_INPUT", Data: data, At: t0}
		}
		one, batched := ev(), ev()
		require.NoError(t, s.InsertAudit(ctx, one), name)
		require.NoError(t, s.InsertAudits(ctx, []store.AuditEvent{batched}), name)
		for _, id := range []string{one.ID, batched.ID} {
			got := auditByID(t, f, id)
			back := string(AuditedInput(t, got.Data))
			if got.Data["inputEncoding"] == nil {
				assert.JSONEq(t, raw, back, name) // a backend may respace JSON it stores as JSON
			} else {
				assert.Equal(t, raw, back, "%s: the input is kept as sent", name)
			}
		}
	}

	// An event built without care (raw hostile JSON, NUL in a column) is
	// stored in its Storable form, its data kept whole.
	for name, raw := range HostileInputs {
		ev := store.AuditEvent{ID: store.NewID("evt"), TenantID: f.aLive.TenantID, Environment: f.aLive.Environment,
			ActorKind: store.ActorAPIKey, ActorID: "key_s", Surface: store.SurfaceAgent, Action: "who\x00ami\xff",
			Outcome: "NOT_FOUND", Data: map[string]any{"input": json.RawMessage(raw)}, At: t0}
		if !json.Valid([]byte(raw)) {
			continue // encoding/json will not carry it as a RawMessage at all
		}
		st := ev.Storable()
		require.NoError(t, s.InsertAudits(ctx, []store.AuditEvent{st}), name)
		got := auditByID(t, f, ev.ID)
		assert.Equal(t, "who\uFFFDami\uFFFD", got.Action)
		whole, _ := json.Marshal(ev.Data)
		if got.Data["dataEncoding"] == nil {
			assert.JSONEq(t, string(whole), mustJSON(t, got.Data), name)
			continue
		}
		back := AuditedInput(t, map[string]any{"input": got.Data["data"], "inputEncoding": got.Data["dataEncoding"]})
		assert.Equal(t, string(whole), string(back), name)
	}
}

func auditByID(t *testing.T, f *fixture, id string) store.AuditEvent {
	t.Helper()
	got, _, err := f.s.ListAudit(f.ctx, f.aLive, store.AuditFilter{}, store.Page{Limit: 200})
	require.NoError(t, err)
	for _, e := range got {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("audit event %s was not stored", id)
	return store.AuditEvent{}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
