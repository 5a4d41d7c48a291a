package console

import "testing"

// The audit trail shows an event's data in key order, nested values as JSON.
func TestAuditDataIsShownAsJSONInKeyOrder(t *testing.T) {
	m := map[string]any{"tool": "candidates_list", "input": map[string]any{"limit": "x", "q": []any{1.5, "a"}}, "limits": map[string]any{"allowedIps": nil}}
	want := `input={"limit":"x","q":[1.5,"a"]} limits={"allowedIps":null} tool=candidates_list`
	for range 5 {
		if got := dataLine(m); got != want {
			t.Fatalf("dataLine = %s\nwant %s", got, want)
		}
	}
	if got := dataLine(nil); got != "" {
		t.Errorf("no data shows %q", got)
	}
}
