package raftbench

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// Cluster is the 3-server cluster `ark bench raft` runs on (real `ark
// server` processes on loopback, fsync on, pprof on, no cap on a
// namespace's unfinished jobs), exported so that
// other benchmarks (bench/clustersim) start their servers the same way.
type Cluster struct {
	c *cluster
	// mu guards the servers' processes, which Restart replaces while
	// others read them (Pid).
	mu *sync.Mutex
}

// Server is one server process of a Cluster.
type Server struct {
	s  *server
	mu *sync.Mutex
}

// Options change how StartCluster runs the servers.
type Options struct {
	// RaftMultiplier is the servers' --raft-multiplier (0: theirs).
	RaftMultiplier int
	// ServerArgs are added to every server's command line.
	ServerArgs []string
	// LogDir, when set, keeps the servers' logs (at warn level, NAME.log)
	// there after Stop; otherwise they go, errors only, with the data.
	LogDir string
}

// StartCluster starts three servers from the ark binary bin and waits for
// a leader.
func StartCluster(ctx context.Context, bin string, opts Options) (*Cluster, error) {
	c, err := startCluster(ctx, bin, false, opts)
	if err != nil {
		return nil, err
	}
	return &Cluster{c: c, mu: &sync.Mutex{}}, nil
}

// Addrs are the servers' HTTP addresses.
func (c *Cluster) Addrs() []string { return c.c.addrs }

// Servers are the cluster's servers, in start order.
func (c *Cluster) Servers() []Server {
	out := make([]Server, len(c.c.servers))
	for i, s := range c.c.servers {
		out[i] = Server{s, c.mu}
	}
	return out
}

// Client is an API client of every server, with a pooled transport.
func (c *Cluster) Client() *client.Client { return c.c.client() }

// Leader waits up to limit for a server that says it leads.
func (c *Cluster) Leader(ctx context.Context, limit time.Duration) (Server, error) {
	s, err := c.c.waitLeader(ctx, nil, limit)
	return Server{s, c.mu}, err
}

// Kill SIGKILLs a server and waits for it to exit.
func (c *Cluster) Kill(s Server) {
	c.mu.Lock()
	p, done := s.s.cmd.Process, s.s.done
	c.mu.Unlock()
	_ = p.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts a killed server again on its data dir.
func (c *Cluster) Restart(s Server) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.start(s.s)
}

// Stop stops every server and removes their data.
func (c *Cluster) Stop() { c.c.stop() }

// Name is the server's name (s1, s2, s3).
func (s Server) Name() string { return s.s.name }

// HTTP is the server's HTTP address.
func (s Server) HTTP() string { return s.s.http }

// Dir is the server's data dir.
func (s Server) Dir() string { return s.s.dir }

// Pid is the server process's ID (0 when it is not running).
func (s Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s.cmd == nil || s.s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.s.done:
		return 0
	default:
		return s.s.cmd.Process.Pid
	}
}
