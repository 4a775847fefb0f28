package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestHAAdvertisedNames: three servers bound to IPs advertise DNS names
// (--raft-advertise, --http-advertise), as a StatefulSet's pods do. The
// Raft configuration records the names. A follower that comes back bound
// to another address (here 0.0.0.0 instead of 127.0.0.1; on Kubernetes a
// new pod IP) keeps its identity: no re-addressing, the same peer list,
// and the leader reaches it by name: with the third server stopped, a
// write commits only through it.
func TestHAAdvertisedNames(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	type named struct {
		srv
		httpPort, raftPort int
		proc               *proc
	}
	var ss []*named
	var join []string
	for range 3 {
		n := &named{srv: srv{dir: t.TempDir()}, httpPort: freePort(t), raftPort: freePort(t)}
		n.http, n.raft = fmt.Sprintf("127.0.0.1:%d", n.httpPort), fmt.Sprintf("127.0.0.1:%d", n.raftPort)
		ss = append(ss, n)
		join = append(join, fmt.Sprintf("localhost:%d", n.httpPort))
	}
	startAt := func(i int, raftBind string, extra ...string) {
		n := ss[i]
		n.proc = start(t, append([]string{"server", "--name", fmt.Sprintf("s%d", i+1), "--data-dir", n.dir,
			"--http", n.http, "--raft", raftBind,
			"--http-advertise", fmt.Sprintf("localhost:%d", n.httpPort), "--raft-advertise", fmt.Sprintf("localhost:%d", n.raftPort),
			"--bootstrap-expect", "3", "--join", strings.Join(join, ","), "--log-level", "warn"}, extra...)...)
	}
	for i := range ss {
		startAt(i, ss[i].raft)
	}
	leader := -1
	waitUntil(t, 30*time.Second, "a leader that knows its peers by name", func() bool {
		for i, n := range ss {
			cl, _ := client.New(n.http)
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(time.Second))
			self, err := cl.ServerSelf(ctx)
			cancel()
			if err == nil && self.Leader == self.Name {
				leader = i
				return true
			}
		}
		return false
	})
	type peer = api.Peer
	peers := func(via int) map[string]peer {
		out, err := cli(t, ss[via].http, "operator", "raft", "list-peers", "-o", "json")
		if err != nil {
			return nil
		}
		var ps []peer
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("list-peers -o json: %v: %s", err, out)
		}
		m := map[string]peer{}
		for _, p := range ps {
			m[p.ID] = p
		}
		return m
	}
	byName := func(m map[string]peer) bool {
		for i, n := range ss {
			p, ok := m[fmt.Sprintf("s%d", i+1)]
			if !ok || !p.Voter || p.Address != fmt.Sprintf("localhost:%d", n.raftPort) || (p.HTTPAddr != "" && p.HTTPAddr != fmt.Sprintf("localhost:%d", n.httpPort)) {
				return false
			}
		}
		return true
	}
	var before map[string]peer
	waitUntil(t, 20*time.Second, "three voters recorded by name", func() bool { before = peers(leader); return byName(before) })

	// A follower comes back bound to another address, the same name.
	moved, other := (leader+1)%3, (leader+2)%3
	ss[moved].proc.kill9(t)
	startAt(moved, fmt.Sprintf("0.0.0.0:%d", ss[moved].raftPort), "--insecure-raft")
	ss[other].proc.signal(syscall.SIGSTOP)
	defer ss[other].proc.signal(syscall.SIGCONT)
	cl, err := client.New(ss[leader].http)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(30*time.Second))
	defer cancel()
	if _, err := cl.SubmitJob(ctx, []byte(haSpec)); err != nil {
		t.Fatalf("a write with the moved follower as the only other voter: %v", err)
	}
	if after := peers(leader); !byName(after) || len(after) != 3 {
		t.Errorf("peers after the move %+v, want the same three by name as before %+v", after, before)
	}
}
