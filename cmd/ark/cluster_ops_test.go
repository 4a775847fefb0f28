package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// These tests start, recover and move whole clusters of real server
// processes (docs/operations.md describes what they show).

// newThree prepares three servers' ports and dirs without starting them.
func newThree(t *testing.T, extra ...string) *threeServers {
	c := &threeServers{t: t, extra: extra, procs: make([]*proc, 3)}
	for i := 0; i < 3; i++ {
		s := newSrv(t)
		c.srvs = append(c.srvs, s)
		c.addrs = append(c.addrs, s.http)
	}
	return c
}

// startWith starts server i with its own --bootstrap-expect and --join
// (join: indexes of the servers it joins).
func (c *threeServers) startWith(i int, expect string, join ...int) {
	s := c.srvs[i]
	args := []string{"server", "--name", fmt.Sprintf("s%d", i+1), "--data-dir", s.dir, "--http", s.http, "--raft", s.raft,
		"--bootstrap-expect", expect, "--log-level", "warn"}
	var to []string
	for _, j := range join {
		to = append(to, c.addrs[j])
	}
	if len(to) > 0 {
		args = append(args, "--join", strings.Join(to, ","))
	}
	c.procs[i] = start(c.t, append(args, c.extra...)...)
}

// selfOf asks server i about itself.
func (c *threeServers) selfOf(i int) (*api.ServerSelf, error) {
	cl, _ := client.New(c.addrs[i])
	cl.Token = c.token
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(2*time.Second))
	defer cancel()
	return cl.ServerSelf(ctx)
}

// peersOf returns the Raft configuration as server i has it.
func (c *threeServers) peersOf(i int) ([]api.Peer, error) {
	cl, _ := client.New(c.addrs[i])
	cl.Token = c.token
	cl.AttemptTimeout = testenv.Scale(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(10*time.Second))
	defer cancel()
	return cl.RaftPeers(ctx)
}

// oneCluster waits until every running server names the same leader and
// the same three voters: one cluster, not two that formed apart.
func (c *threeServers) oneCluster() {
	c.t.Helper()
	var last string
	waitUntil(c.t, 30*time.Second, "one cluster of three voters", func() bool {
		leaders := map[string]bool{}
		for i := range c.srvs {
			self, err := c.selfOf(i)
			if err != nil || self.Leader == "" {
				last = fmt.Sprintf("s%d: %v", i+1, err)
				return false
			}
			leaders[self.Leader] = true
			peers, err := c.peersOf(i)
			if err != nil {
				last = fmt.Sprintf("s%d peers: %v", i+1, err)
				return false
			}
			var ids []string
			for _, p := range peers {
				if p.Voter {
					ids = append(ids, p.ID)
				}
			}
			sort.Strings(ids)
			if strings.Join(ids, ",") != "s1,s2,s3" {
				last = fmt.Sprintf("s%d has voters %v", i+1, ids)
				return false
			}
		}
		if len(leaders) != 1 {
			last = fmt.Sprintf("leaders %v", leaders)
			return false
		}
		return true
	})
	_ = last
	c.waitLeader()
}

// TestClusterFormsInAnyOrder: `--bootstrap-expect 3` on a first server
// with no --join, the others joining it, forms one cluster whichever starts
// first; so does every server joining every other, started at once (the
// way startThree starts them), and servers that only --join (the default
// --bootstrap-expect 1) are counted by the one that forms it.
func TestClusterFormsInAnyOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	for _, tc := range []struct {
		name string
		run  func(c *threeServers)
	}{
		{"first without join starts first", func(c *threeServers) {
			c.startWith(0, "3")
			c.startWith(1, "3", 0)
			c.startWith(2, "3", 0)
		}},
		{"joiners start before the server they join", func(c *threeServers) {
			c.startWith(1, "3", 0)
			c.startWith(2, "3", 0)
			// s2 and s3 keep asking for s1, which is not up yet.
			waitUntil(c.t, 15*time.Second, "s2 and s3 to answer", func() bool {
				a, err1 := c.selfOf(1)
				b, err2 := c.selfOf(2)
				return err1 == nil && err2 == nil && !a.HasState && !b.HasState
			})
			c.startWith(0, "3")
		}},
		{"joiners with the default bootstrap-expect", func(c *threeServers) {
			c.startWith(1, "1", 0)
			c.startWith(2, "1", 0)
			c.startWith(0, "3")
		}},
		{"everyone joins everyone at once", func(c *threeServers) {
			for i := range c.srvs {
				c.start(i)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case its own cluster
			c := newThree(t)
			c.t = t
			tc.run(c)
			c.oneCluster()
			// The cluster takes writes through every server.
			for i, a := range c.addrs {
				if out, err := cli(t, a, "job", "submit", "../../examples/hello-gang.yaml"); err != nil || !strings.HasPrefix(out, "hello-gang-") {
					t.Fatalf("submit through s%d: %v %q", i+1, err, out)
				}
			}
		})
	}
}

// TestClusterBootstrapExpectMismatch: servers started with different
// --bootstrap-expect do not form a cluster, and say why.
func TestClusterBootstrapExpectMismatch(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := newThree(t)
	c.startWith(0, "3")
	c.startWith(1, "2", 0)
	waitUntil(t, 20*time.Second, "s1 to say the servers disagree", func() bool {
		b, _ := os.ReadFile(c.procs[0].out)
		return strings.Contains(string(b), "expects 2 servers and this one 3")
	})
	for i := 0; i < 2; i++ {
		if self, err := c.selfOf(i); err != nil || self.HasState {
			t.Errorf("s%d formed a cluster despite the mismatch: %+v %v", i+1, self, err)
		}
	}
}

// TestClusterRecoverLostQuorum: two of three servers are lost for good; the
// survivor, recovered offline with a peers file listing only itself, leads
// again with every job, and a new server joins it.
func TestClusterRecoverLostQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	cl := c.client()
	var ids []string
	for i := 0; i < 5; i++ {
		r, err := cl.SubmitJob(context.Background(), []byte(haSpec))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Every server has every job before two of them are lost.
	for i := range c.addrs {
		one, _ := client.New(c.addrs[i])
		waitUntil(t, 10*time.Second, "every job on every server", func() bool {
			jobs, err := one.Jobs(context.Background(), "")
			return err == nil && len(jobs) == len(ids)
		})
	}
	survivor := (c.waitLeader() + 1) % 3 // a follower: recovery must not depend on who led
	for i := range c.procs {
		if i != survivor {
			c.procs[i].kill9(t)
		}
	}
	// Without a quorum the survivor cannot take writes.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(3*time.Second))
	one, _ := client.New(c.addrs[survivor])
	one.RetryFor = testenv.Scale(2 * time.Second)
	if _, err := one.SubmitJob(ctx, []byte(haSpec)); err == nil {
		t.Fatal("a lone server of three took a write")
	}
	cancel()
	// Recovery is offline: the survivor is stopped first, and the command
	// refuses a dir a server is still running on.
	peers := filepath.Join(t.TempDir(), "peers.json")
	b, _ := json.Marshal([]map[string]any{{"id": fmt.Sprintf("s%d", survivor+1), "address": c.srvs[survivor].raft, "non_voter": false}})
	if err := os.WriteFile(peers, b, 0o600); err != nil {
		t.Fatal(err)
	}
	recoverCmd := func() (string, error) {
		out, err := exec.Command(arkBin, "operator", "raft", "recover", "--data-dir", c.srvs[survivor].dir, "--peers-file", peers).CombinedOutput()
		return string(out), err
	}
	if out, err := recoverCmd(); err == nil || !strings.Contains(out, "locked") {
		t.Fatalf("recover under a running server: %v %s", err, out)
	}
	c.procs[survivor].signal(15)
	<-c.procs[survivor].done
	if out, err := recoverCmd(); err != nil || !strings.Contains(out, "recovered") {
		t.Fatalf("recover: %v %q", err, out)
	}
	c.start(survivor)
	l := c.waitLeader(slices.DeleteFunc([]int{0, 1, 2}, func(i int) bool { return i == survivor })...)
	if l != survivor {
		t.Fatalf("leader s%d, want the survivor s%d", l+1, survivor+1)
	}
	jobs, err := one.JobsConsistent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, j.ID)
	}
	sort.Strings(got)
	sort.Strings(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("jobs after recovery %v, want %v", got, ids)
	}
	if _, err := one.SubmitJob(context.Background(), []byte(haSpec)); err != nil {
		t.Fatalf("the recovered server takes no writes: %v", err)
	}
	// The cluster grows again the usual way.
	s4 := newSrv(t)
	start(t, "server", "--name", "s4", "--data-dir", s4.dir, "--http", s4.http, "--raft", s4.raft, "--join", c.addrs[survivor], "--log-level", "warn")
	waitUntil(t, 20*time.Second, "s4 to join the recovered server", func() bool {
		out, err := cli(t, c.addrs[survivor], "operator", "raft", "list-peers", "-o", "json")
		return err == nil && strings.Count(out, `"voter": true`) == 2
	})
}

// TestClusterRaftAddressChange: a server that restarts on its data dir with
// another --raft address is moved to it in the configuration (it asks the
// leader) and goes on replicating; a new server reusing a member's name is
// still refused.
func TestClusterRaftAddressChange(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	c := startThree(t)
	// Every server must hold the configuration before one is moved: a
	// server stopped before its first entry arrived restarts with no
	// state, and a fresh server with a member's name is an impostor (CI
	// once stopped s2 0.7 s after it started, before it had a log).
	c.oneCluster()
	l := c.waitLeader()
	moved := (l + 1) % 3
	name := fmt.Sprintf("s%d", moved+1)
	c.procs[moved].signal(15)
	<-c.procs[moved].done
	c.srvs[moved].raft = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.start(moved)
	waitUntil(t, 30*time.Second, name+" at its new address in the configuration", func() bool {
		peers, err := c.peersOf(l)
		if err != nil {
			return false
		}
		for _, p := range peers {
			if p.ID == name {
				return p.Address == c.srvs[moved].raft && p.Error == ""
			}
		}
		return false
	})
	// Writes reach the moved server: a job submitted through the leader is
	// read back from the moved server's own state.
	r, err := c.client().SubmitJob(context.Background(), []byte(haSpec))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := client.New(c.addrs[moved])
	waitUntil(t, 15*time.Second, "the new job on the moved server", func() bool {
		j, _, err := one.Job(context.Background(), r.ID, 0, 0)
		return err == nil && j.ID == r.ID
	})
	// A fresh server that takes a member's name is refused, not moved in.
	imp := newSrv(t)
	p := start(t, "server", "--name", name, "--data-dir", imp.dir, "--http", imp.http, "--raft", imp.raft, "--join", c.addrs[l], "--log-level", "warn")
	waitUntil(t, 20*time.Second, "the impostor to be refused", func() bool {
		b, _ := os.ReadFile(p.out)
		return strings.Contains(string(b), "already a peer")
	})
	peers, err := c.peersOf(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, pe := range peers {
		if pe.ID == name && pe.Address != c.srvs[moved].raft {
			t.Fatalf("the impostor took %s's seat: %+v", name, pe)
		}
	}
}
