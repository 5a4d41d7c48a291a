package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientCommandsAgainstARealServer(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, map[string]string{"VEREF_DATABASE_URL": "sqlite:" + filepath.Join(dir, "dev.db")}, "--dev")
	key := keyLine.FindStringSubmatch(s.out.String())[1]
	env := map[string]string{"VEREF_API_KEY": key, "VEREF_API_URL": s.url}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, envOf(env), strings.NewReader(`{"name":"From Stdin"}`), &out, &errOut)
		return out.String(), err
	}

	out, err := cli("whoami")
	require.NoError(t, err)
	assert.Contains(t, out, "demo")

	req := filepath.Join(dir, "reference-request.json")
	require.NoError(t, os.WriteFile(req, []byte(`{
	  "candidate": {"name": "Dana Scully", "email": "dana@example.com", "role": "Staff Engineer"},
	  "referees": [
	    {"name": "Walter Skinner", "email": "walter@example.com", "relationship": "manager"},
	    {"name": "Fox Mulder", "email": "fox@example.com", "relationship": "peer"}
	  ],
	  "sendInvitations": true
	}`), 0o600))
	out, err = cli("references", "start", "--json", req, "--output", "json")
	require.NoError(t, err, out)
	var started map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &started), out)
	assert.Equal(t, "sent", started["status"])
	assert.Len(t, started["testInvitationLinks"], 2)
	id := started["id"].(string)

	out, err = cli("references", "start", "--json", req)
	require.NoError(t, err)
	assert.Contains(t, out, "no e-mail was sent", "the table output keeps the links a test key gets once")
	assert.Contains(t, out, "/v1/referee/")

	out, err = cli("references", "--help")
	require.NoError(t, err)
	for _, verb := range []string{"cancel", "get", "invite", "list", "start"} {
		assert.Regexp(t, `(?m)^  `+verb+` `, out, "the help lists every verb")
	}

	out, err = cli("references", "list")
	require.NoError(t, err)
	assert.Contains(t, out, id)
	assert.Contains(t, out, "STATUS")
	out, err = cli("references", "get", id, "--json")
	require.NoError(t, err)
	assert.Contains(t, out, "Walter Skinner")

	out, err = cli("candidates", "create", "--body", "-")
	require.NoError(t, err)
	assert.Contains(t, out, "From Stdin")
	out, err = cli("candidates", "list", "--q", "dana")
	require.NoError(t, err)
	assert.Contains(t, out, "Dana Scully")
	assert.NotContains(t, out, "From Stdin")

	// Problems come back as one clear line and an error.
	_, err = cli("references", "get", "ref_nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NOT_FOUND (404)")
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"candidateId": "cand_x", "referees": []}`), 0o600))
	_, err = cli("references", "start", "--json", bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "INVALID_INPUT (422)")
	assert.NotContains(t, err.Error(), "\n")

	env["VEREF_API_URL"] = "http://api.example.com"
	_, err = cli("references", "list")
	require.ErrorContains(t, err, "plain http", "the key is never sent in clear to a remote host")
	_, err = cli("ask", "hello")
	require.ErrorContains(t, err, "plain http")

	env["VEREF_API_KEY"] = ""
	_, err = cli("references", "list")
	require.ErrorContains(t, err, "VEREF_API_KEY is not set")
}
