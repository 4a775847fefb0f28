package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/server"
)

const (
	idMgmt  = "mgmt-token-0123456789"
	idAgent = "agent-token-0123456789"
)

// aclServer runs a server with a management and an agent token.
func aclServer(t *testing.T) *server.Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(idMgmt+" management\n"+idAgent+" agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := server.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{
		Name: "s1", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Bootstrap: true, Logger: zaptest.NewLogger(t), ACL: acl,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "leader", s.IsLeader)
	return s
}

// runAgent runs an agent on dataDir until the returned stop is called.
func runAgent(t *testing.T, s *server.Server, dataDir, token string) (*Agent, func()) {
	t.Helper()
	a, err := New(Config{
		Name: "node-0", Servers: []string{s.HTTPAddr()}, DataDir: dataDir, FakeGPUs: "2xH200:141Gi",
		Address: "127.0.0.1", StopGrace: 2 * time.Second, Logger: zaptest.NewLogger(t), Token: token,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
	t.Cleanup(stop)
	mgmt := mgmtClient(t, s)
	waitFor(t, 10*time.Second, "the node ready", func() bool {
		n, err := mgmt.Node(context.Background(), "node-0")
		return err == nil && n.Status == api.NodeReady && n.AgentAddr == a.ln.Addr().String()
	})
	return a, stop
}

func mgmtClient(t *testing.T, s *server.Server) *client.Client {
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.Token = idMgmt
	return c
}

// The node secret is kept 0600 in the data dir, and a restarted agent
// registers with it: same node ID, same secret, the operator's drain kept,
// and no agent token needed any more.
func TestNodeSecretKeptAcrossRestart(t *testing.T) {
	s := aclServer(t)
	ctx := context.Background()
	mgmt := mgmtClient(t, s)
	dir := t.TempDir()
	a1, stop1 := runAgent(t, s, dir, idAgent)
	// The node is ready once its registration commits; the agent saves
	// what the answer carries just after (the logs key last).
	waitFor(t, 10*time.Second, "the node's secrets saved", func() bool {
		_, err := os.Stat(filepath.Join(dir, logsKeyFile))
		return err == nil
	})
	id := a1.NodeID()
	secrets := map[string]string{}
	for _, name := range []string{nodeSecretFile, logsKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", name, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		secrets[name] = strings.TrimSpace(string(b))
	}
	if len(secrets[nodeSecretFile]) != 64 || secrets[nodeSecretFile] == idAgent {
		t.Fatalf("stored node secret %q", secrets[nodeSecretFile])
	}
	// The agent's own calls use the secret: the agent token alone reads
	// nothing of the node's.
	agentOnly, _ := client.New(s.HTTPAddr())
	agentOnly.Token = idAgent
	if _, _, err := agentOnly.NodeAllocations(ctx, id, 0, 0); !isCode(err, 403) {
		t.Errorf("agent token lists the node's allocations: %v", err)
	}
	if _, err := mgmt.DrainNode(ctx, id, true, time.Hour); err != nil {
		t.Fatal(err)
	}
	stop1()

	a2, _ := runAgent(t, s, dir, "")
	if a2.NodeID() != id {
		t.Errorf("restarted agent is node %s, was %s", a2.NodeID(), id)
	}
	b, _ := os.ReadFile(filepath.Join(dir, nodeSecretFile))
	if strings.TrimSpace(string(b)) != secrets[nodeSecretFile] {
		t.Errorf("the node secret changed across a restart")
	}
	n, err := mgmt.Node(ctx, id)
	if err != nil || n.Drain == nil || !n.Ineligible {
		t.Errorf("node after the restart: drain %v, ineligible %v (%v)", n.Drain, n.Ineligible, err)
	}
	nodes, _ := mgmt.Nodes(ctx)
	if len(nodes) != 1 {
		t.Errorf("%d nodes after the restart, want 1", len(nodes))
	}
}

// A task reports progress through its agent, but cannot end its own
// allocation: the report takes no status, the agent passes it on as
// running, and only the supervisor's observation of the process ending
// reports it succeeded or failed (its GPUs stay booked until then).
func TestTaskReportCannotEndAllocation(t *testing.T) {
	s := aclServer(t)
	ctx := context.Background()
	mgmt := mgmtClient(t, s)
	a, _ := runAgent(t, s, t.TempDir(), idAgent)
	resp, err := mgmt.SubmitJob(ctx, jobSpec("long", 1, 2, `sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	var alloc *api.Allocation
	waitFor(t, 10*time.Second, "the task running", func() bool {
		j, _, err := mgmt.Job(ctx, resp.ID, 0, 0)
		if err == nil && len(j.Allocations) == 1 && j.Allocations[0].Status == api.AllocRunning {
			alloc = j.Allocations[0]
		}
		return alloc != nil
	})
	report := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.ln.Addr().String()+"/v1/allocations/"+alloc.ID+"/report", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.taskToken(alloc.ID))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	for _, body := range []string{`{"status":"succeeded","progress":"done"}`, `{"progress":"done","exitCode":0}`} {
		if got := report(body); got != http.StatusBadRequest {
			t.Errorf("task report %s: %d, want 400", body, got)
		}
	}
	if got := report(`{"progress":"step 7"}`); got != http.StatusNoContent {
		t.Fatalf("task progress report: %d", got)
	}
	// The task token is no API token either.
	task, _ := client.New(s.HTTPAddr())
	task.Token = a.taskToken(alloc.ID)
	if err := task.UpdateAllocStatus(ctx, alloc.ID, api.AllocStatusUpdate{Status: api.AllocSucceeded}); !isCode(err, 401) {
		t.Errorf("task token reports a status to the servers: %v", err)
	}
	j, _, err := mgmt.Job(ctx, resp.ID, 0, 0)
	if err != nil || j.Allocations[0].Status != api.AllocRunning || j.Allocations[0].Progress != "step 7" {
		t.Errorf("allocation after the task's reports: %+v (%v)", j.Allocations[0], err)
	}
	if err := mgmt.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
}

func isCode(err error, code int) bool {
	ae, ok := err.(*client.APIError)
	return ok && ae.StatusCode == code
}
