package clustersim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ark-sched/ark/bench/raftbench"
	"github.com/ark-sched/ark/internal/procstat"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// monitor samples the servers' CPU time and resident memory once a second,
// telling the leader's apart from the followers'.
type monitor struct {
	mu      sync.Mutex
	servers []raftbench.Server
	leader  string
	last    map[int]procstat.Stat // by pid

	leaderCPU, leaderWall time.Duration
	leaderRSS, followRSS  int64

	hbStart, pollStart int64
}

func newMonitor(c *raftbench.Cluster, leader raftbench.Server) *monitor {
	return &monitor{servers: c.Servers(), leader: leader.Name(), last: map[int]procstat.Stat{}}
}

func (m *monitor) setLeader(s raftbench.Server) {
	m.mu.Lock()
	m.leader = s.Name()
	m.mu.Unlock()
}

func (m *monitor) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.sample(now.Sub(prev))
			prev = now
		}
	}
}

func (m *monitor) sample(wall time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.servers {
		pid := s.Pid()
		if pid == 0 {
			continue
		}
		ps, err := procstat.Read(pid)
		if err != nil {
			continue
		}
		prev, seen := m.last[pid]
		m.last[pid] = ps
		if s.Name() == m.leader {
			m.leaderRSS = max(m.leaderRSS, ps.RSS)
			if seen {
				m.leaderCPU += ps.CPU - prev.CPU
				m.leaderWall += wall
			}
		} else {
			m.followRSS = max(m.followRSS, ps.RSS)
		}
	}
}

// figures are the leader's mean CPU cores over the run and the peak
// resident memory (MiB) of the leader and of the followers.
func (m *monitor) figures() (cores, leaderMiB, followerMiB float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leaderWall > 0 {
		cores = round3(m.leaderCPU.Seconds() / m.leaderWall.Seconds())
	}
	return cores, round1(float64(m.leaderRSS) / (1 << 20)), round1(float64(m.followRSS) / (1 << 20))
}

func (m *monitor) startCounting(fl *fleet) {
	m.mu.Lock()
	m.hbStart, m.pollStart = fl.heartbeats.Load(), fl.polls.Load()
	m.mu.Unlock()
}

// stopCounting is the heartbeats taken and the long-polls answered since
// startCounting.
func (m *monitor) stopCounting(fl *fleet) (heartbeats, polls int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fl.heartbeats.Load() - m.hbStart, fl.polls.Load() - m.pollStart
}

// nodesMarkedDown lists the nodes that are down or were (their status
// says "heartbeat resumed"), with what identifies that status change.
func nodesMarkedDown(ctx context.Context, cl *client.Client) (map[string]string, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nodes, err := cl.Nodes(rctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range nodes {
		if n.Status == api.NodeDown || n.StatusInfo == "heartbeat resumed" {
			out[n.ID] = fmt.Sprintf("%s/%s/%d", n.Status, n.StatusInfo, n.ModifyIndex)
		}
	}
	return out, nil
}

// countChanged counts the nodes of after that were not in before as they
// are now: marked down (or back) between the two lists.
func countChanged(before, after map[string]string) int {
	n := 0
	for id, v := range after {
		if before[id] != v {
			n++
		}
	}
	return n
}
