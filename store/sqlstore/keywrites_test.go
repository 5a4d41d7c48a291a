package sqlstore

import "testing"

func TestChangesKeys(t *testing.T) {
	for q, want := range map[string]bool{
		"UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ?":                                  true,
		"  UPDATE api_keys SET suspended_at = ? WHERE id = ?":                                              true,
		"DELETE FROM api_keys WHERE id = ?":                                                                true,
		"UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)": false,
		"UPDATE api_keys SET last_used_at = ?, expires_at = ? WHERE id = ?":                                true,
		"SELECT id FROM api_keys WHERE prefix = ?":                                                         false,
		"UPDATE api_key_usage SET status = 1":                                                              false,
		"INSERT INTO api_keys (id) VALUES (?)":                                                             false,
	} {
		if got := changesKeys(q); got != want {
			t.Errorf("changesKeys(%q) = %v, want %v", q, got, want)
		}
	}
}
