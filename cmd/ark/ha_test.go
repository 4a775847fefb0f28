package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// threeServers is a 3-server cluster of real processes on loopback.
type threeServers struct {
	t     *testing.T
	srvs  []srv
	procs []*proc
	addrs []string
	extra []string // more server flags
	token string   // the token clients use
}

func startThree(t *testing.T) *threeServers {
	t.Helper()
	return startThreeWithToken(t, "")
}

func (c *threeServers) start(i int) {
	s := c.srvs[i]
	args := []string{"server", "--name", fmt.Sprintf("s%d", i+1), "--data-dir", s.dir, "--http", s.http, "--raft", s.raft,
		"--bootstrap-expect", "3", "--join", strings.Join(c.addrs, ","), "--log-level", "warn"}
	c.procs[i] = start(c.t, append(args, c.extra...)...)
}

func (c *threeServers) client() *client.Client {
	cl, err := client.New(c.addrs...)
	if err != nil {
		c.t.Fatal(err)
	}
	cl.AttemptTimeout = testenv.Scale(2 * time.Second) // a SIGSTOPped server is given up on quickly
	cl.Token = c.token
	return cl
}

// waitLeader waits until a server other than the excluded ones says it is
// the leader, and returns its index.
func (c *threeServers) waitLeader(exclude ...int) int {
	c.t.Helper()
	leader := -1
	waitUntil(c.t, 20*time.Second, "a leader", func() bool {
		for i, a := range c.addrs {
			if slices.Contains(exclude, i) {
				continue
			}
			cl, _ := client.New(a)
			cl.Token = c.token
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(time.Second))
			self, err := cl.ServerSelf(ctx)
			cancel()
			if err == nil && self.Leader == self.Name {
				// ... and has published its address, so followers
				// can forward to it.
				l, err := cl.Leader(context.Background())
				if err != nil || l.Address == "" {
					return false
				}
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// listJobs returns every job, read from the leader after a barrier.
func (c *threeServers) listJobs() []*api.Job {
	c.t.Helper()
	var jobs []*api.Job
	waitUntil(c.t, 20*time.Second, "a consistent job list", func() bool {
		cl := c.client()
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
		defer cancel()
		var err error
		jobs, err = cl.JobsConsistent(ctx)
		return err == nil
	})
	return jobs
}

const haSpec = `{"name":"ha","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`

// TestHAKillLeaderLosesNothing: 8 clients submit continuously while the
// leader is SIGKILLed (and restarted) three times; afterwards every
// acknowledged job exists exactly once and no job exists that nobody
// submitted.
func TestHAKillLeaderLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	acked := map[string]string{} // idempotency key -> job ID
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.client()
			for ctx.Err() == nil {
				key := client.NewIdempotencyKey()
				// Retry one submission under one key until it is
				// acknowledged: the key makes the retries safe.
				for {
					rctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
					resp, err := cl.SubmitJobWithKey(rctx, []byte(haSpec), key)
					cancel()
					if err == nil {
						mu.Lock()
						acked[key] = resp.ID
						mu.Unlock()
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	ackedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// Before each kill and after the last restart the cluster must take
	// more writes: waiting for them, not for a fixed time, keeps every
	// failover under load however slow the machine.
	tookWrites := func(what string) {
		base := ackedNow()
		waitUntil(t, 30*time.Second, "5 more acknowledged submissions "+what, func() bool { return ackedNow() >= base+5 })
	}
	for round := 0; round < 3; round++ {
		tookWrites(fmt.Sprintf("before round %d", round))
		l := c.waitLeader()
		c.procs[l].kill9(t)
		killed := time.Now()
		nl := c.waitLeader(l)
		t.Logf("round %d: killed leader s%d; s%d leads after %s", round, l+1, nl+1, time.Since(killed).Round(time.Millisecond))
		c.start(l)
	}
	tookWrites("after the last restart")
	stop()
	wg.Wait()

	jobs := c.listJobs()
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j.ID]++
	}
	ackedIDs := map[string]bool{}
	for _, id := range acked {
		ackedIDs[id] = true
		if seen[id] != 1 {
			t.Errorf("acknowledged job %s exists %d times", id, seen[id])
		}
	}
	for id := range seen {
		if !ackedIDs[id] {
			t.Errorf("job %s exists but no client was given it", id)
		}
	}
	t.Logf("%d jobs acknowledged, %d exist", len(acked), len(jobs))
}

// TestHAHoldsWritesThroughElection: a write that reaches a follower just
// after the leader died is held until the next leader is elected, then
// forwarded, so a client that asks that server once, without retries,
// gets its job and not a 503 (--rpc-hold-timeout, Nomad's and Consul's
// rpc_hold_timeout). With the hold off the same write is refused, as all
// were before it: the client's backoff then came on top of the election.
func TestHAHoldsWritesThroughElection(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	for _, hold := range []string{"5s", "0s"} {
		t.Run("hold="+hold, func(t *testing.T) {
			c := startThreeWithToken(t, "", "--rpc-hold-timeout", hold)
			l := c.waitLeader()
			f := (l + 1) % 3
			fc, err := client.New(c.addrs[f])
			if err != nil {
				t.Fatal(err)
			}
			fc.RetryFor = 0 // one try: only the server's hold can carry it over the election
			fc.AttemptTimeout = testenv.Scale(10 * time.Second)
			c.procs[l].kill9(t)
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(15*time.Second))
			defer cancel()
			resp, err := fc.SubmitJob(ctx, []byte(haSpec))
			took := time.Since(began).Round(time.Millisecond)
			if hold == "0s" {
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.StatusCode != 503 {
					t.Fatalf("write to a follower with the leader dead and no hold: %v after %s, want a 503", err, took)
				}
				return
			}
			if err != nil {
				t.Fatalf("write to a follower with the leader dead: %v after %s, want it held until the next leader takes it", err, took)
			}
			nl := c.waitLeader(l)
			nc, err := client.New(c.addrs[nl])
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := nc.Job(ctx, resp.ID, 0, 0); err != nil {
				t.Fatalf("job %s acknowledged after %s is not on the new leader s%d: %v", resp.ID, took, nl+1, err)
			}
			t.Logf("held write answered after %s (new leader s%d)", took, nl+1)
		})
	}
}

// TestHARestartAllIdenticalState: stopping all three servers and starting
// them again gives the same jobs and index.
func TestHARestartAllIdenticalState(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	cl := c.client()
	for i := 0; i < 10; i++ {
		if _, err := cl.SubmitJob(context.Background(), []byte(haSpec)); err != nil {
			t.Fatal(err)
		}
	}
	// Let the scheduler settle (every job pending with its reason), so that
	// nothing is still being written when the servers stop.
	waitUntil(t, 15*time.Second, "every job to have its pending reason", func() bool {
		for _, j := range c.listJobs() {
			if j.Reason == "" {
				return false
			}
		}
		return true
	})
	before := summary(c.listJobs())
	for _, p := range c.procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		<-p.done
	}
	for i := range c.srvs {
		c.start(i)
	}
	c.waitLeader()
	if after := summary(c.listJobs()); after != before {
		t.Errorf("state changed across a full restart:\nbefore %q\nafter  %q", before, after)
	}
}

func summary(jobs []*api.Job) string {
	var parts []string
	for _, j := range jobs {
		parts = append(parts, fmt.Sprintf("%s/%s/%d/%d/%s", j.ID, j.Status, j.CreateIndex, j.ModifyIndex, j.Reason))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// TestHAPendingReasonOnEveryServer: a waiting job's reason, held by the
// leader and committed beside the job, reads the same on every server,
// each read locally.
func TestHAPendingReasonOnEveryServer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	r, err := c.client().SubmitJob(context.Background(), []byte(haSpec))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, a := range c.addrs {
		one, _ := client.New(a)
		waitUntil(t, 10*time.Second, "the reason on "+a, func() bool {
			j, _, err := one.Job(context.Background(), r.ID, 0, 0)
			if err != nil || j.Reason == "" {
				return false
			}
			seen[a] = fmt.Sprintf("%s %q %d", j.Status, j.Reason, j.ModifyIndex)
			return true
		})
	}
	first := seen[c.addrs[0]]
	for a, got := range seen {
		if got != first || !strings.HasPrefix(got, api.JobPending) {
			t.Errorf("server %s: %s; server %s: %s", a, got, c.addrs[0], first)
		}
	}
}

// TestHAMinority: with one server stopped (SIGSTOP) the majority takes
// writes and the stopped one catches up when it resumes; with two stopped,
// the remaining server refuses writes with a clear "no leader" error.
func TestHAMinority(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	// A hold shorter than the refusal's 3 s attempt below: the isolated
	// server holds the write for a leader, then says there is none.
	c := startThreeWithToken(t, "", "--rpc-hold-timeout", "1s")
	l := c.waitLeader()
	f := (l + 1) % 3
	c.procs[f].signal(syscall.SIGSTOP)
	cl := c.client()
	var last string
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
		resp, err := cl.SubmitJob(ctx, []byte(haSpec))
		cancel()
		if err != nil {
			t.Fatalf("write with one follower stopped: %v", err)
		}
		last = resp.ID
	}
	c.procs[f].signal(syscall.SIGCONT)
	fc, _ := client.New(c.addrs[f])
	waitUntil(t, 15*time.Second, "the resumed follower to catch up", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(time.Second))
		defer cancel()
		_, _, err := fc.Job(ctx, last, 0, 0) // a local (stale-allowed) read on the follower
		return err == nil
	})

	// Now leave one server alone.
	alone := c.waitLeader()
	for i := range c.procs {
		if i != alone {
			c.procs[i].signal(syscall.SIGSTOP)
		}
	}
	ac, _ := client.New(c.addrs[alone])
	ac.RetryFor = 0 // see the refusal itself, not the retries
	var err error
	waitUntil(t, 15*time.Second, "the isolated server to refuse writes", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(3*time.Second))
		defer cancel()
		_, err = ac.SubmitJob(ctx, []byte(haSpec))
		ae, ok := err.(*client.APIError)
		return ok && ae.StatusCode == 503
	})
	if !strings.Contains(err.Error(), "leader") {
		t.Errorf("refusal does not say why: %v", err)
	}
	for i := range c.procs {
		if i != alone {
			c.procs[i].signal(syscall.SIGCONT)
		}
	}
	c.waitLeader()
	waitUntil(t, 15*time.Second, "writes after the partition heals", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(3*time.Second))
		defer cancel()
		_, err := cl.SubmitJob(ctx, []byte(haSpec))
		return err == nil
	})
}

// TestHAJoinAndRemove: a server started with --join joins a running
// cluster as a voter; remove-peer takes it out; `ark server join` adds a
// server that waits (--bootstrap-expect 0) to be joined.
func TestHAJoinAndRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s1 := newSrv(t)
	s1.start(t)
	s2 := newSrv(t)
	start(t, "server", "--name", "s2", "--data-dir", s2.dir, "--http", s2.http, "--raft", s2.raft, "--join", s1.http, "--log-level", "warn")
	peers := func() string {
		out, err := cli(t, s1.http, "operator", "raft", "list-peers", "-o", "json")
		if err != nil {
			return err.Error()
		}
		return out
	}
	waitUntil(t, 20*time.Second, "s2 to join", func() bool { return strings.Contains(peers(), `"id": "s2"`) })
	// Writes sent to the new follower are forwarded to the leader.
	if out, err := cli(t, s2.http, "job", "submit", "../../examples/hello-gang.yaml"); err != nil || !strings.HasPrefix(out, "hello-gang-") {
		t.Fatalf("submit through the joined follower: %v %q", err, out)
	}
	s3 := newSrv(t)
	start(t, "server", "--name", "s3", "--data-dir", s3.dir, "--http", s3.http, "--raft", s3.raft, "--bootstrap-expect", "0", "--log-level", "warn")
	waitUntil(t, 10*time.Second, "s3 to answer", func() bool {
		_, err := cli(t, s3.http, "job", "list")
		return err == nil || strings.Contains(err.Error(), "leader")
	})
	if out, err := cli(t, s3.http, "server", "join", s1.http); err != nil || !strings.Contains(out, "joined") {
		t.Fatalf("ark server join: %v %q", err, out)
	}
	waitUntil(t, 20*time.Second, "three peers", func() bool { return strings.Count(peers(), `"voter": true`) == 3 })
	if _, err := cli(t, s1.http, "operator", "raft", "remove-peer", "s3"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(peers(), `"id": "s3"`) {
		t.Errorf("s3 still a peer after remove-peer:\n%s", peers())
	}
	if _, err := cli(t, s1.http, "operator", "raft", "remove-peer", "nope"); exitCodeOf(errors.Unwrap(err)) != 1 {
		t.Errorf("removing an unknown peer: %v", err)
	}
}

// TestHASnapshotSaveRestore: a saved snapshot restores the state it was
// taken at, on every server; a damaged file is refused and changes nothing.
func TestHASnapshotSaveRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	cl := c.client()
	var kept []string
	for i := 0; i < 3; i++ {
		r, err := cl.SubmitJob(context.Background(), []byte(haSpec))
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, r.ID)
	}
	file := filepath.Join(t.TempDir(), "state.snap")
	if _, err := cli(t, c.addrs[0], "operator", "snapshot", "save", file); err != nil {
		t.Fatal(err)
	}
	later, err := cl.SubmitJob(context.Background(), []byte(haSpec))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.snap")
	data, _ := os.ReadFile(file)
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, c.addrs[1], "operator", "snapshot", "restore", bad); err == nil || !strings.Contains(err.Error(), "state unchanged") {
		t.Fatalf("restoring a truncated snapshot: %v", err)
	}
	if len(c.listJobs()) != 4 {
		t.Fatal("a refused restore changed the state")
	}
	if _, err := cli(t, c.addrs[2], "operator", "snapshot", "restore", file); err != nil {
		t.Fatal(err)
	}
	// Every server, read locally, has exactly the snapshot's jobs.
	for _, a := range c.addrs {
		one, _ := client.New(a)
		waitUntil(t, 10*time.Second, "restored state on "+a, func() bool {
			jobs, err := one.Jobs(context.Background(), "")
			if err != nil || len(jobs) != 3 {
				return false
			}
			for _, j := range jobs {
				if j.ID == later.ID {
					return false
				}
			}
			return true
		})
	}
	_ = kept
}

// TestHAWithTokens: a cluster that requires tokens forms (the servers use
// their management token with each other), forwards a namespace token's
// write from a follower, and refuses a request without a token.
func TestHAWithTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("mgmt-token-0123456789 management\nnlp-token-0123456789ab namespace:nlp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startThreeWithToken(t, "mgmt-token-0123456789", "--token-file", file)
	l := c.waitLeader()
	follower := c.addrs[(l+1)%3]
	spec := filepath.Join(t.TempDir(), "nlp.yaml")
	if err := os.WriteFile(spec, []byte("name: nlp-job\nnamespace: nlp\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(t, follower, "job", "submit", "--token", "nlp-token-0123456789ab", spec); err != nil || !strings.HasPrefix(out, "nlp-job-") {
		t.Fatalf("namespace token through a follower: %v %q", err, out)
	}
	if _, err := cli(t, follower, "job", "list"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("a request without a token: %v", err)
	}
	if out, err := cli(t, follower, "operator", "raft", "list-peers", "--token", c.token); err != nil || strings.Count(out, "true") < 3 {
		t.Errorf("list-peers with the management token: %v\n%s", err, out)
	}
}

// startThreeWithToken starts the cluster with more server flags; clients
// use token.
func startThreeWithToken(t *testing.T, token string, extra ...string) *threeServers {
	t.Helper()
	c := &threeServers{t: t, extra: extra, token: token}
	for i := 0; i < 3; i++ {
		s := newSrv(t)
		c.srvs = append(c.srvs, s)
		c.addrs = append(c.addrs, s.http)
	}
	c.procs = make([]*proc, 3)
	for i := range c.srvs {
		c.start(i)
	}
	c.waitLeader()
	return c
}
