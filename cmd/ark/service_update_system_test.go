package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// echoService is an inference job of 2 replicas running `ark example
// http-service` that answers with message.
func echoService(message, extraUpdate, extraArgs string) string {
	return fmt.Sprintf(`name: echo
kind: inference
replicas: 2
resources: {gpus: 1, cpu: 100m, memory: 64Mi}
restart: {backoff: 1s}
update: {maxParallel: 1, minHealthyTime: 1s, progressDeadline: 60s%s}
task:
  driver: exec
  exec: {command: [ark, example, http-service, --message, %s, --delay, 5ms%s]}
  health: {http: {path: /v1/health}, interval: 250ms, timeout: 250ms, failures: 10}
`, extraUpdate, message, extraArgs)
}

// loopClient calls a service's endpoint in a closed loop until stopped,
// counting the answers by message and every failure.
type loopClient struct {
	mu       sync.Mutex
	seen     map[string]int
	failures []string
	calls    atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startLoop(t *testing.T, url string, workers int) *loopClient {
	l := &loopClient{seen: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: testenv.Scale(20 * time.Second)}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.calls.Add(1)
				resp, err := hc.Post(url, "application/json", strings.NewReader(`{"prompt":"hi"}`))
				if err != nil {
					l.fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var ans struct{ Message string }
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ans) != nil {
					l.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
					continue
				}
				l.mu.Lock()
				l.seen[ans.Message]++
				l.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	t.Cleanup(l.halt)
	return l
}

func (l *loopClient) fail(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, why)
}

func (l *loopClient) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// check fails the test if any call failed so far, and returns how many
// answers carried message.
func (l *loopClient) check(t *testing.T, during string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Fatalf("%d of %d calls failed during %s; first: %s", len(l.failures), l.calls.Load(), during, l.failures[0])
	}
}

func (l *loopClient) count(message string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[message]
}

// TestSystemServiceRollingUpdate: real servers, agents and replica
// processes. A closed-loop client calls the service's endpoint through a
// rolling update, the kill of one replica's process, a canary update with
// its promotion, and an update whose replicas crash (reverted
// automatically), and no call fails.
func TestSystemServiceRollingUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "2xH200:141Gi", []string{"a", "b"}, "--stop-grace", "5s")
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := submitSpec(t, s.http, echoService("v1", "", ""))
	endpoint := "http://" + s.http + "/v1/services/" + id + "/v1/completions"
	readyReplicas := func(version int) int {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return -1
		}
		n := 0
		for _, a := range j.Allocations {
			if a.Serving() && a.Ready && a.JobVersion == version {
				n++
			}
		}
		return n
	}
	waitUntil(t, 60*time.Second, "2 ready replicas", func() bool { return readyReplicas(0) == 2 })
	loop := startLoop(t, endpoint, 2)
	waitUntil(t, 10*time.Second, "answers from v1", func() bool { return loop.count("v1") > 20 })
	update := func(body string, args ...string) (string, time.Duration, error) {
		f := filepath.Join(t.TempDir(), "job.yaml")
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := cli(t, s.http, append([]string{"job", "update", id, f}, args...)...)
		return out, time.Since(start), err
	}
	before, _, _ := c.Job(ctx, id, 0, 0)

	// 1. A rolling update of both replicas.
	out, took, err := update(echoService("v2", "", ""), "--wait")
	if err != nil || !strings.Contains(out, "rollout successful") {
		t.Fatalf("update to v2: %v\n%s", err, out)
	}
	loop.check(t, "the rolling update to v2")
	t.Logf("FIGURE rolling update of 2 replicas (minHealthyTime 1s, shutdownDelay 2s): %s; %d calls, 0 failed", took.Round(10*time.Millisecond), loop.calls.Load())
	waitUntil(t, 10*time.Second, "answers from v2", func() bool { return loop.count("v2") > 20 })
	var after *api.Job
	waitUntil(t, 20*time.Second, "the old replicas ended (after their shutdown delay)", func() bool {
		after, _, err = c.Job(ctx, id, 0, 0)
		if err != nil {
			return false
		}
		for _, a := range after.Allocations {
			if a.JobVersion == 0 && !a.Terminal() {
				return false
			}
		}
		return true
	})
	for _, a := range before.Allocations {
		if i := slices.IndexFunc(after.Allocations, func(b *api.Allocation) bool { return b.ID == a.ID }); i < 0 || after.Allocations[i].Status != api.AllocStopped {
			t.Fatalf("old replica %s did not end stopped after the rollout", a.ID)
		}
	}

	// 2. Kill one replica's process: the other serves, the endpoint
	// retries the calls it had, and the replica is replaced alone.
	pid, victim := replicaProcess(t, after)
	killed := time.Now()
	if err := exec.Command("kill", "-9", strconv.Itoa(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the killed replica replaced and ready", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return false
		}
		ready := 0
		for _, a := range j.Allocations {
			if a.Serving() && a.Ready {
				ready++
				if a.ID == victim {
					return false
				}
			}
		}
		return ready == 2
	})
	t.Logf("FIGURE replica process killed -> replacement ready: %s (restart backoff 1s)", time.Since(killed).Round(10*time.Millisecond))
	loop.check(t, "the kill of a replica's process")
	cur, _, _ := c.Job(ctx, id, 0, 0)
	for _, a := range after.Allocations {
		if a.Serving() && a.ID != victim {
			if i := slices.IndexFunc(cur.Allocations, func(b *api.Allocation) bool { return b.ID == a.ID }); i < 0 || !cur.Allocations[i].Serving() {
				t.Fatalf("replica %s was touched by the other one's crash", a.ID)
			}
		}
	}

	// 2b. Drain the node of one replica: it moves to the other node
	// alone, and the endpoint keeps answering from the one left.
	var moved *api.Allocation
	for _, a := range cur.Allocations {
		if a.Serving() && a.Node == "a" {
			moved = a
		}
	}
	if moved == nil {
		t.Fatalf("no replica on node a: %+v", cur.Allocations)
	}
	drained := time.Now()
	if out, err := cli(t, s.http, "node", "drain", "a", "--deadline", "0s", "--wait"); err != nil {
		t.Fatalf("drain: %v %s", err, out)
	}
	waitUntil(t, 60*time.Second, "the drained replica ready on node b", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return false
		}
		ready := 0
		for _, a := range j.Allocations {
			if a.Serving() && a.Ready && a.Node == "b" {
				ready++
			}
		}
		return ready == 2
	})
	t.Logf("FIGURE node drained -> its replica ready elsewhere: %s", time.Since(drained).Round(10*time.Millisecond))
	loop.check(t, "the drain of a replica's node")
	// A drained node stays closed until an operator opens it again.
	if out, err := cli(t, s.http, "node", "eligibility", "a", "--enable"); err != nil {
		t.Fatalf("open node a again: %v %s", err, out)
	}

	// 3. A canary: one v3 replica next to the v2 ones, until promoted.
	out, _, err = update(echoService("v3", ", canary: 1", ""))
	if err != nil || !strings.Contains(out, "rolling out") {
		t.Fatalf("update to v3: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, "the canary healthy and waiting", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		return err == nil && j.Deployment != nil && strings.Contains(j.Deployment.Message, "ark job promote")
	})
	waitUntil(t, 10*time.Second, "answers from the canary", func() bool { return loop.count("v3") > 0 })
	if n := readyReplicas(2); n != 1 { // v1 is version 0, v3 version 2
		t.Fatalf("%d ready v3 replicas before the promotion, want the 1 canary", n)
	}
	st, err := cli(t, s.http, "job", "status", id)
	if err != nil || !strings.Contains(st, "canaries wait for ark job promote") || !strings.Contains(st, "Endpoint   /v1/services/"+id) {
		t.Fatalf("job status during the canary: %v\n%s", err, st)
	}
	if out, err := cli(t, s.http, "job", "promote", id, "--wait"); err != nil || !strings.Contains(out, "rollout successful") {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	loop.check(t, "the canary update and its promotion")

	// 4. A version whose replicas crash at start: its rollout fails at
	// the first crash and goes back to v3, which kept serving.
	out, _, err = update(echoService("v4", ", autoRevert: true", ", --listen, nowhere"), "--wait")
	if err == nil || !strings.Contains(out+err.Error(), "failed") {
		t.Fatalf("update to a crashing v4 should fail: %v\n%s\n%s", err, out, mustCLI(t, s.http, "job", "status", id))
	}
	waitUntil(t, 30*time.Second, "the revert to v3 rolled out", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		return err == nil && j.Deployment != nil && j.Deployment.RevertOf == 3 && j.Deployment.Status == api.DeploymentSuccessful
	})
	loop.check(t, "a failed update and its automatic revert")
	if loop.count("v4") != 0 {
		t.Fatalf("a v4 replica that never passed its health check answered %d calls", loop.count("v4"))
	}
	hist, err := cli(t, s.http, "job", "history", id)
	if err != nil || !strings.Contains(hist, "failed: replica") || !strings.Contains(hist, "automatic revert to version 2") {
		t.Fatalf("history: %v\n%s\nupdate said: %s", err, hist, out)
	}
	loop.halt()
	loop.check(t, "the whole test")
	t.Logf("FIGURE %d calls through the endpoint across a rolling update, a kill, a drain, a canary update and a reverted update: 0 failed", loop.calls.Load())

	// The endpoint's added latency: the same calls to one replica
	// directly and through the endpoint, alternated.
	j, _, _ := c.Job(ctx, id, 0, 0)
	var direct string
	for _, a := range j.Allocations {
		if a.Serving() && a.Ready {
			direct = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port)) + "/v1/completions"
			break
		}
	}
	d, e := latencies(t, direct, endpoint, 300)
	t.Logf("FIGURE latency of a 5ms call, direct vs endpoint, 300 each: p50 %s vs %s, p99 %s vs %s",
		pct(d, 50), pct(e, 50), pct(d, 99), pct(e, 99))
}

// replicaProcess finds the pid of a serving replica's task process (its
// environment names its allocation).
func replicaProcess(t *testing.T, j *api.Job) (int, string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, a := range j.Allocations {
		if !a.Serving() {
			continue
		}
		for _, p := range procs {
			env, err := os.ReadFile(p)
			if err != nil || !bytes.Contains(env, []byte("ARK_ALLOC_ID="+a.ID+"\x00")) {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
			if !bytes.Contains(cmdline, []byte("http-service")) {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid, a.ID
		}
	}
	t.Fatal("no replica process found")
	return 0, ""
}

func latencies(t *testing.T, direct, endpoint string, n int) (d, e []time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	call := func(url string) time.Duration {
		start := time.Now()
		resp, err := hc.Post(url, "application/json", strings.NewReader(`{"prompt":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	for range n {
		d = append(d, call(direct))
		e = append(e, call(endpoint))
	}
	slices.Sort(d)
	slices.Sort(e)
	return d, e
}

func pct(xs []time.Duration, p int) time.Duration {
	return xs[min(len(xs)-1, len(xs)*p/100)].Round(10 * time.Microsecond)
}

func mustCLI(t *testing.T, addr string, args ...string) string {
	out, err := cli(t, addr, args...)
	if err != nil {
		return err.Error()
	}
	return out
}
