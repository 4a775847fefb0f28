package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/server"
)

// TestAgentLogsNeedToken: with tokens on, an agent serves logs only to a
// caller with its node's logs key; the servers present it (they derive it),
// so ark job logs keeps working while a direct call without it, with any
// token of the token file (the agent token included) or with another
// node's key is refused.
func TestAgentLogsNeedToken(t *testing.T) {
	const (
		mgmt  = "mgmt-token-0123456789"
		agent = "agent-token-0123456789"
		ns    = "ns-token-0123456789ab"
	)
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(mgmt+" management\n"+agent+" agent\n"+ns+" namespace:default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := server.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	c := clusterWith(t, 1, acl, agent, mgmt)
	ctx := context.Background()
	resp, err := c.SubmitJob(ctx, jobSpec("talker", 1, 1, `echo hello from the task; sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the log through the servers", func() bool {
		rc, err := c.JobLogs(ctx, resp.ID, 0, "stdout", false)
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Contains(string(b), "hello from the task")
	})
	job, _, err := c.Job(ctx, resp.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.Node(ctx, job.Allocations[0].Node)
	if err != nil {
		t.Fatal(err)
	}
	// The servers' key for this node: HMAC-SHA256(management token, ID).
	m := hmac.New(sha256.New, []byte(mgmt))
	m.Write([]byte("ark-node-logs\x00" + node.ID))
	logsKey := hex.EncodeToString(m.Sum(nil))
	m = hmac.New(sha256.New, []byte(mgmt))
	m.Write([]byte("ark-node-logs\x00other-node"))
	otherKey := hex.EncodeToString(m.Sum(nil))
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+node.AgentAddr+"/v1/allocations/"+job.Allocations[0].ID+"/logs", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	for tok, want := range map[string]int{"": 401, ns: 401, mgmt: 401, agent: 401, otherKey: 401, logsKey: 200} {
		if got := get(tok); got != want {
			t.Errorf("agent logs with token %q: %d, want %d", tok, got, want)
		}
	}
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
}
