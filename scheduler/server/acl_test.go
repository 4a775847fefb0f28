package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api/client"
)

const (
	mgmtTok  = "mgmt-0123456789abcdef"
	agentTok = "agent-0123456789abcdef"
	nlpTok   = "nlp-0123456789abcdefgh"
)

func aclServer(t *testing.T) *Server {
	t.Helper()
	return aclServerWith(t, Config{})
}

// aclServerWith is aclServer with more of its config (a cluster key).
func aclServerWith(t *testing.T, cfg Config) *Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens")
	body := "# test tokens\n" + mgmtTok + " management\n" + agentTok + " agent\n" + nlpTok + " namespace:nlp\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ACL = acl
	return startServer(t, cfg)
}

func as(t *testing.T, s *Server, token string) *client.Client {
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.Token = token
	return c
}

func code(err error) int {
	if ae, ok := err.(*client.APIError); ok {
		return ae.StatusCode
	}
	if err == nil {
		return 200
	}
	return -1
}

func TestACL(t *testing.T) {
	s := aclServer(t)
	ctx := context.Background()
	mgmt, agent, nlp := as(t, s, mgmtTok), as(t, s, agentTok), as(t, s, nlpTok)
	none, wrong := as(t, s, ""), as(t, s, "not-a-token-at-all-000")

	nlpSpec := []byte(strings.Replace(gangSpec, `"name":"gang"`, `"name":"gang","namespace":"nlp"`, 1))
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"no token", func() error { _, err := none.Jobs(ctx, ""); return err }(), 401},
		{"unknown token", func() error { _, err := wrong.Jobs(ctx, ""); return err }(), 401},
		{"agent cannot submit", func() error { _, err := agent.SubmitJob(ctx, nlpSpec); return err }(), 403},
		{"namespace token submits to its namespace", func() error { _, err := nlp.SubmitJob(ctx, nlpSpec); return err }(), 200},
		{"namespace token cannot submit elsewhere", func() error { _, err := nlp.SubmitJob(ctx, []byte(gangSpec)); return err }(), 403},
		{"namespace token cannot register nodes", func() error { _, err := nlp.RegisterNode(ctx, fakeNode("x", 1)); return err }(), 403},
		{"agent registers nodes", func() error { _, err := agent.RegisterNode(ctx, fakeNode("a", 2)); return err }(), 200},
		{"namespace token reads nodes", func() error { _, err := nlp.Nodes(ctx); return err }(), 200},
		{"namespace token cannot list peers", func() error { _, err := nlp.RaftPeers(ctx); return err }(), 403},
		{"management lists peers", func() error { _, err := mgmt.RaftPeers(ctx); return err }(), 200},
		{"management submits anywhere", func() error { _, err := mgmt.SubmitJob(ctx, []byte(gangSpec)); return err }(), 200},
	}
	for _, tc := range cases {
		if got := code(tc.err); got != tc.want {
			t.Errorf("%s: %d (%v), want %d", tc.name, got, tc.err, tc.want)
		}
	}
	// A namespace token sees only its namespace's jobs; others' are "not found".
	jobs, err := nlp.Jobs(ctx, "")
	if err != nil || len(jobs) != 1 || jobs[0].Namespace != "nlp" {
		t.Fatalf("nlp sees %d jobs (%v)", len(jobs), err)
	}
	all, _ := mgmt.Jobs(ctx, "")
	for _, j := range all {
		if j.Namespace == "default" {
			if _, _, err := nlp.Job(ctx, j.ID, 0, 0); code(err) != 404 {
				t.Errorf("nlp reading a default-namespace job: %v", err)
			}
			if err := nlp.CancelJob(ctx, j.ID); code(err) != 404 {
				t.Errorf("nlp cancelling a default-namespace job: %v", err)
			}
		}
	}
	// The leader endpoint stays open for health checks.
	resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/status/leader")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("leader status without a token: %v %v", resp.StatusCode, err)
	}
}

func TestLoadTokensErrors(t *testing.T) {
	for body, want := range map[string]string{
		"short management\n":  "at least 16",
		mgmtTok + " admin\n":  "unknown role",
		mgmtTok + "\n":        "want TOKEN ROLE",
		agentTok + " agent\n": "no management token",
		mgmtTok + " management\n" + nlpTok + " namespace:\n": "needs a name",
	} {
		file := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTokens(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadTokens(%q) = %v, want %q", body, err, want)
		}
	}
	// A token file others can read gives every role away.
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(mgmtTok+" management\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a token file of mode 0644: %v, want a refusal saying chmod 600", err)
	}
}
