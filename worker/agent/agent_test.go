package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/server"
)

// cluster starts an in-process server and n agents with fake GPUs.
func cluster(t *testing.T, n int) *client.Client {
	t.Helper()
	return clusterWith(t, n, nil, "", "")
}

// clusterWith is cluster with access control: the servers' tokens, the
// token every agent uses, and the client's.
func clusterWith(t *testing.T, n int, acl *server.ACL, agentToken, clientToken string) *client.Client {
	t.Helper()
	return clusterOpts(t, n, acl, clientToken, func(cfg *Config) { cfg.Token = agentToken })
}

// clusterCfg is cluster with each agent's Config changed by edit.
func clusterCfg(t *testing.T, n int, edit func(*Config)) *client.Client {
	t.Helper()
	return clusterOpts(t, n, nil, "", edit)
}

func clusterOpts(t *testing.T, n int, acl *server.ACL, clientToken string, edit func(*Config)) *client.Client {
	t.Helper()
	log := zaptest.NewLogger(t)
	s, err := server.New(server.Config{
		Name: "s1", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Bootstrap: true, Logger: log, ACL: acl,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- s.Run(srvCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var agentDone []chan error
	for i := 0; i < n; i++ {
		cfg := Config{
			Name: fmt.Sprintf("node-%d", i), Servers: []string{s.HTTPAddr()}, DataDir: t.TempDir(),
			FakeGPUs: "2xH200:141Gi", Address: "127.0.0.1", StopGrace: 2 * time.Second, Logger: log,
		}
		edit(&cfg)
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		agentDone = append(agentDone, done)
		go func() { done <- a.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range agentDone {
			if err := <-d; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
		stopSrv()
		<-srvDone
	})
	c, err := client.New(s.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.Token = clientToken
	waitFor(t, 10*time.Second, "nodes ready", func() bool {
		nodes, err := c.Nodes(context.Background())
		return err == nil && len(nodes) == n
	})
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jobSpec(name string, replicas, gpus int, script string) []byte {
	b, _ := json.Marshal(map[string]any{
		"name": name, "kind": "batch", "replicas": replicas,
		"resources": map[string]any{"gpus": gpus, "cpu": "100m", "memory": "64Mi"},
		"task": map[string]any{"driver": "exec", "exec": map[string]any{
			"command": []string{"/bin/sh", "-c", script}, "env": map[string]string{"GREETING": "hi"},
		}},
	})
	return b
}

func waitJob(t *testing.T, c *client.Client, id string, d time.Duration) *api.Job {
	t.Helper()
	var job *api.Job
	waitFor(t, d, "job "+id+" to end", func() bool {
		var err error
		job, _, err = c.Job(context.Background(), id, 0, 0)
		return err == nil && job.Terminal()
	})
	return job
}

func logs(t *testing.T, c *client.Client, id string, rank int) string {
	t.Helper()
	rc, err := c.JobLogs(context.Background(), id, rank, "stdout", false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// TestGangRunsWithRendezvousEnv runs a two-node gang and checks each rank's
// environment as the task saw it.
func TestGangRunsWithRendezvousEnv(t *testing.T) {
	c := cluster(t, 2)
	resp, err := c.SubmitJob(context.Background(), jobSpec("env", 2, 2,
		`echo "rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK node_rank=$NODE_RANK master=$MASTER_ADDR:$MASTER_PORT gpus=$CUDA_VISIBLE_DEVICES job=$ARK_JOB_ID greeting=$GREETING ckpt=$ARK_CHECKPOINT_URI"`))
	if err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, c, resp.ID, 20*time.Second)
	if job.Status != api.JobSucceeded {
		t.Fatalf("job %s: %s", job.Status, job.Reason)
	}
	for _, a := range job.Allocations {
		out := logs(t, c, resp.ID, a.Rank)
		for _, want := range []string{
			fmt.Sprintf("rank=%d world=2 local=0 node_rank=%d", a.Rank, a.Rank),
			fmt.Sprintf("master=127.0.0.1:%d", a.MasterPort),
			"gpus=0,1", "job=" + resp.ID, "greeting=hi", "ckpt=file://",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("rank %d output %q lacks %q", a.Rank, out, want)
			}
		}
		if a.ExitCode == nil || *a.ExitCode != 0 {
			t.Errorf("rank %d exit code %v", a.Rank, a.ExitCode)
		}
	}
}

// TestFailedRankFailsGang: one rank exiting non-zero fails the job and stops
// the other rank.
func TestFailedRankFailsGang(t *testing.T) {
	c := cluster(t, 2)
	resp, err := c.SubmitJob(context.Background(), jobSpec("fail", 2, 2,
		`if [ "$RANK" = 1 ]; then exit 3; fi; exec sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, c, resp.ID, 20*time.Second)
	if job.Status != api.JobFailed || !strings.Contains(job.Reason, "rank 1 failed") || !strings.Contains(job.Reason, "exit code 3") {
		t.Fatalf("job %s: %q", job.Status, job.Reason)
	}
	// Rank 0 is stopped by the scheduler and reported.
	waitFor(t, 10*time.Second, "rank 0 stopped", func() bool {
		job, _, _ = c.Job(context.Background(), resp.ID, 0, 0)
		return job.Allocations[0].Terminal()
	})
	if a := job.Allocations[0]; a.Signal != "SIGTERM" || !strings.Contains(a.Message, "stopped by the scheduler") {
		t.Errorf("rank 0: status %s signal %q message %q", a.Status, a.Signal, a.Message)
	}
}

// TestCancelKillsTask: cancelling a running job stops its process group.
func TestCancelKillsTask(t *testing.T) {
	c := cluster(t, 1)
	ctx := context.Background()
	resp, err := c.SubmitJob(ctx, jobSpec("sleepy", 1, 1, `echo started; sleep 60 & wait`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "task running", func() bool {
		job, _, err := c.Job(ctx, resp.ID, 0, 0)
		return err == nil && len(job.Allocations) == 1 && job.Allocations[0].Status == api.AllocRunning
	})
	waitFor(t, 10*time.Second, "the task's first output", func() bool {
		rc, err := c.JobLogs(ctx, resp.ID, 0, "stdout", false)
		if err != nil {
			return false
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Contains(string(b), "started")
	})
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 10*time.Second, "task stopped", func() bool {
		job, _, _ = c.Job(ctx, resp.ID, 0, 0)
		return job.Allocations[0].Terminal()
	})
	if job.Status != api.JobCancelled || job.Allocations[0].Status != api.AllocCancelled {
		t.Errorf("job %s alloc %s", job.Status, job.Allocations[0].Status)
	}
	if got := logs(t, c, resp.ID, 0); !strings.Contains(got, "started") {
		t.Errorf("log %q", got)
	}
}

// TestMissingProgramReportsFailure: a command that does not exist fails the
// allocation with a message naming it.
func TestMissingProgramReportsFailure(t *testing.T) {
	c := cluster(t, 1)
	body := []byte(`{"name":"nope","kind":"batch","resources":{"gpus":1,"cpu":"100m","memory":"64Mi"},"task":{"driver":"exec","exec":{"command":["no-such-program-ark"]}}}`)
	resp, err := c.SubmitJob(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, c, resp.ID, 10*time.Second)
	if job.Status != api.JobFailed || !strings.Contains(job.Reason, "no-such-program-ark") {
		t.Errorf("job %s: %q", job.Status, job.Reason)
	}
}

// TestGangRestartsWithCount: a gang whose rank fails on the first attempt
// restarts whole, and the next attempt sees ARK_RESTART_COUNT=1.
func TestGangRestartsWithCount(t *testing.T) {
	c := cluster(t, 2)
	b, _ := json.Marshal(map[string]any{
		"name": "flaky", "kind": "finetune", "replicas": 2,
		"resources": map[string]any{"gpus": 1, "cpu": "100m", "memory": "64Mi"},
		"restart":   map[string]any{"maxRestarts": 2, "backoff": "100ms"},
		"task": map[string]any{"driver": "exec", "exec": map[string]any{"command": []string{"/bin/sh", "-c",
			`echo "attempt $ARK_RESTART_COUNT rank $RANK"; if [ "$ARK_RESTART_COUNT" = 0 ] && [ "$RANK" = 1 ]; then exit 9; fi; [ "$RANK" = 1 ] || sleep 0.5`}}},
	})
	resp, err := c.SubmitJob(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, c, resp.ID, 30*time.Second)
	if job.Status != api.JobSucceeded || job.RestartCount != 1 {
		t.Fatalf("job %s after %d restarts: %q", job.Status, job.RestartCount, job.Reason)
	}
	attempts := map[int]int{}
	for _, a := range job.Allocations {
		attempts[a.Attempt]++
	}
	if attempts[0] != 2 || attempts[1] != 2 {
		t.Errorf("allocations per attempt %v, want two of each", attempts)
	}
	if out := logs(t, c, resp.ID, 1); !strings.Contains(out, "attempt 1 rank 1") {
		t.Errorf("rank 1's latest log %q", out)
	}
}

// TestDrainMovesGang: draining a node with deadline 0 restarts the gang
// on it elsewhere, without using its restarts, and completes the drain.
func TestDrainMovesGang(t *testing.T) {
	c := cluster(t, 2)
	ctx := context.Background()
	resp, err := c.SubmitJob(ctx, jobSpec("mover", 1, 2, `echo "attempt $ARK_RESTART_COUNT on $ARK_NODE_NAME"; sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 10*time.Second, "running", func() bool {
		job, _, _ = c.Job(ctx, resp.ID, 0, 0)
		return len(job.Allocations) == 1 && job.Allocations[0].Status == api.AllocRunning
	})
	from := job.Allocations[0].Node
	if _, err := c.DrainNode(ctx, from, true, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the job to run on the other node", func() bool {
		job, _, _ = c.Job(ctx, resp.ID, 0, 0)
		for _, a := range job.Allocations {
			if a.Attempt == 1 && a.Status == api.AllocRunning && a.Node != from {
				return true
			}
		}
		return false
	})
	if job.Migrations != 1 || job.RestartCount != 1 || job.Spec.Restart.MaxRestarts != 0 {
		t.Errorf("migrations %d restarts %d", job.Migrations, job.RestartCount)
	}
	// The rank moved off the drained node ended drained: not a failure.
	var first *api.Allocation
	waitFor(t, 10*time.Second, "the first attempt's rank to end", func() bool {
		job, _, _ = c.Job(ctx, resp.ID, 0, 0)
		for _, a := range job.Allocations {
			if a.Attempt == 0 && a.Terminal() {
				first = a
			}
		}
		return first != nil
	})
	if first.Status != api.AllocDrained {
		t.Errorf("the first attempt's rank ended %s (%s), want drained", first.Status, first.Message)
	}
	waitFor(t, 10*time.Second, "the drain to complete", func() bool {
		n, err := c.Node(ctx, from)
		return err == nil && n.Drain == nil && n.Ineligible
	})
	// An ineligible node takes nothing new until it is enabled again.
	if _, err := c.SetNodeEligibility(ctx, from, true); err != nil {
		t.Fatal(err)
	}
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
}

func TestIneligibleNodeTakesNothing(t *testing.T) {
	c := cluster(t, 1)
	ctx := context.Background()
	if _, err := c.SetNodeEligibility(ctx, "node-0", false); err != nil {
		t.Fatal(err)
	}
	resp, err := c.SubmitJob(ctx, jobSpec("waits", 1, 1, "true"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a pending reason", func() bool {
		job, _, _ := c.Job(ctx, resp.ID, 0, 0)
		return job.Status == api.JobPending && strings.Contains(job.Reason, "1 more node(s) are ineligible or draining")
	})
	if _, err := c.SetNodeEligibility(ctx, "node-0", true); err != nil {
		t.Fatal(err)
	}
	if job := waitJob(t, c, resp.ID, 10*time.Second); job.Status != api.JobSucceeded {
		t.Errorf("after enabling: %s %q", job.Status, job.Reason)
	}
}

// TestTaskReport: a running task's report, with the task's token, reaches
// the servers through its agent and shows on its allocation; reports
// without it, or with another allocation's, are refused.
func TestTaskReport(t *testing.T) {
	c := cluster(t, 1)
	ctx := context.Background()
	resp, err := c.SubmitJob(ctx, jobSpec("reporter", 1, 1, `echo "token $ARK_TASK_TOKEN"; sleep 30`))
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 10*time.Second, "running", func() bool {
		job, _, _ = c.Job(ctx, resp.ID, 0, 0)
		return len(job.Allocations) == 1 && job.Allocations[0].Status == api.AllocRunning
	})
	node, err := c.Node(ctx, job.Allocations[0].Node)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	waitFor(t, 10*time.Second, "the task's token in its log", func() bool {
		rc, err := c.JobLogs(ctx, resp.ID, 0, "stdout", false)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		_, token, _ = strings.Cut(strings.TrimSpace(string(b)), "token ")
		return len(token) == 64
	})
	postAs := func(id, tok, body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+node.AgentAddr+"/v1/allocations/"+id+"/report", strings.NewReader(body))
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
	post := func(body string) int { return postAs(job.Allocations[0].ID, token, body) }
	good := `{"progress":"step 5/10","checkpoint":{"uri":"file:///ckpt/reporter/5","step":5}}`
	for name, code := range map[string]int{
		"no token":                   postAs(job.Allocations[0].ID, "", good),
		"wrong token":                postAs(job.Allocations[0].ID, strings.Repeat("0", 64), good),
		"another allocation's token": postAs("other-0-aa", token, good),
	} {
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	if code := post(good); code != http.StatusNoContent {
		t.Fatalf("report: %d", code)
	}
	job, _, _ = c.Job(ctx, resp.ID, 0, 0)
	a := job.Allocations[0]
	if a.Progress != "step 5/10" || a.LastCheckpoint == nil || a.LastCheckpoint.Step != 5 || a.LastCheckpoint.URI != "file:///ckpt/reporter/5" || a.LastCheckpoint.Time.IsZero() {
		t.Errorf("allocation after report: progress %q checkpoint %+v", a.Progress, a.LastCheckpoint)
	}
	for body, want := range map[string]int{`{}`: 400, `{"bogus":1}`: 400, `not json`: 400} {
		if code := post(body); code != want {
			t.Errorf("report %s: %d, want %d", body, code, want)
		}
	}
	// The task's rules (worker/agent/rules.go) take the same token.
	getRules := func(id, tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+node.AgentAddr+"/v1/allocations/"+id+"/rules", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if code, _ := getRules(job.Allocations[0].ID, ""); code != http.StatusUnauthorized {
		t.Errorf("rules without a token: %d, want 401", code)
	}
	if code, _ := getRules("other-0-aa", token); code != http.StatusUnauthorized {
		t.Errorf("another allocation's rules with this token: %d, want 401", code)
	}
	if code, body := getRules(job.Allocations[0].ID, token); code != http.StatusOK || !strings.Contains(body, `"rules":[]`) || !strings.Contains(body, `"adapters":[]`) {
		t.Errorf("own rules: %d %s, want 200 with no rules and no adapters", code, body)
	}
	if err := c.CancelJob(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
}
