package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/verefwork/veref/auth"
	"github.com/verefwork/veref/tools"
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
	for _, verb := range []string{"cancel", "get", "send-invitations", "list", "start"} {
		assert.Regexp(t, `(?m)^  `+verb+` `, out, "the help lists every verb")
	}

	out, err = cli("references", "invite", id, "-o", "json")
	require.NoError(t, err, "the old name of send-invitations still works")
	assert.Contains(t, out, `"status": "sent"`)

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

	env["VEREF_API_KEY"], env["VEREF_API_URL"] = "", s.url
	_, err = cli("references", "list")
	require.ErrorContains(t, err, "VEREF_API_KEY is not set")
}

func TestEveryCatalogueOperationHasACommand(t *testing.T) {
	root := (&cli{getenv: envOf(nil)}).rootCmd()
	h, err := auth.NewHasher(make([]byte, auth.MinPepperLen))
	require.NoError(t, err)
	names := map[string]bool{}
	for _, tool := range tools.New(tools.NewRegistry(nil, nil), tools.Deps{Hasher: h}).Tools() {
		names[tool.Name] = true
		path := strings.SplitN(tool.Name, "_", 2)
		if len(path) == 2 {
			path[1] = strings.ReplaceAll(path[1], "_", "-")
		}
		cmd, rest, err := root.Find(path)
		require.NoError(t, err, tool.Name)
		assert.Empty(t, rest, tool.Name)
		assert.Contains(t, cmd.Long, tool.HTTP.Method+" /v1/api"+tool.HTTP.Path, tool.Name)
	}
	assert.True(t, names["reports_revoke_share"])
	cmd, _, err := root.Find([]string{"reports", "revoke-share"})
	require.NoError(t, err)
	assert.Equal(t, "revoke-share ID SHARE_ID", cmd.Use)
	cmd, _, err = root.Find([]string{"candidates", "update"})
	require.NoError(t, err)
	for _, f := range []string{"name", "email", "phone", "role", "external-ref", "body", "file", "idempotency-key", "output", "json"} {
		assert.NotNil(t, cmd.Flags().Lookup(f), "candidates update --%s", f)
	}
	cmd, _, err = root.Find([]string{"references", "start"})
	require.NoError(t, err)
	assert.Equal(t, "string", cmd.Flags().Lookup("json").Value.Type(), "references start --json takes the request file")
}

func TestGeneratedCommandsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, map[string]string{"VEREF_DATABASE_URL": "sqlite:" + filepath.Join(dir, "dev.db")}, "--dev")
	key := keyLine.FindStringSubmatch(s.out.String())[1]
	env := map[string]string{"VEREF_API_KEY": key, "VEREF_API_URL": s.url}
	cli := func(args ...string) map[string]any {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append(args, "-o", "json"), envOf(env), strings.NewReader(""), &out, &errOut)
		require.NoError(t, err, "%v: %s", args, errOut.String())
		assert.Empty(t, errOut.String(), "--wait is silent when stderr is not a terminal")
		var m map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &m), out.String())
		return m
	}

	// Flags from the input schema build the body; camelCase works as well.
	cand := cli("candidates", "create", "--name", "Dana Scully", "--email", "dana@example.com", "--externalRef", "ats-1")
	assert.Equal(t, "Dana Scully", cand["name"])
	assert.Equal(t, "ats-1", cand["externalRef"])
	cand = cli("candidates", "update", cand["id"].(string), "--role", "Staff Engineer")
	assert.Equal(t, "Staff Engineer", cand["role"])
	assert.Equal(t, "Dana Scully", cand["name"], "a PATCH sends only the flags given")

	req := filepath.Join(dir, "req.json")
	require.NoError(t, os.WriteFile(req, []byte(`{"referees": [
	  {"name": "Walter Skinner", "email": "walter@example.com", "relationship": "manager"}]}`), 0o600))
	started := cli("references", "start", "--file", req, "--candidate-id", cand["id"].(string), "--send-invitations")
	id := started["id"].(string)
	assert.Equal(t, "sent", started["status"])
	links := started["testInvitationLinks"].([]any)
	require.Len(t, links, 1)

	// The referee answers while the CLI waits.
	go func() {
		time.Sleep(300 * time.Millisecond)
		url := links[0].(map[string]any)["url"].(string)
		body := `{"answers":[{"questionId":"q1","rating":5},{"questionId":"q2","rating":4},{"questionId":"q3","rating":5},` +
			`{"questionId":"q4","rating":5},{"questionId":"q5","text":"Rigorous"},{"questionId":"q6","text":"Delegation"}]}`
		res, err := http.Post(url+"/response", "application/json", strings.NewReader(body))
		if err == nil {
			res.Body.Close()
		}
	}()
	done := cli("references", "get", id, "--wait", "--interval", "50ms")
	assert.Equal(t, "completed", done["status"])

	report := cli("reports", "generate", id)
	share := cli("reports", "share", report["id"].(string), "--expires-in-hours", "2")
	assert.Contains(t, share["url"], "/v1/shares/")
	revoked := cli("reports", "revoke-share", report["id"].(string), share["id"].(string))
	assert.NotEmpty(t, revoked["revokedAt"])

	val := cli("valuations", "run", id, "--wait", "--interval", "50ms")
	assert.Contains(t, []any{"succeeded"}, val["status"], val)

	list := cli("valuations", "list", "--request-id", id, "--limit", "1")
	assert.Len(t, list["data"], 1)
}
