package raftbench

import (
	"syscall"
	"time"

	"github.com/ark-sched/ark/internal/procstat"
)

// On a machine shared with other work, submissions/s moves with whatever
// else runs; the CPU time each submission costs the servers does not.
// cpuSample reads it from /proc (Linux; elsewhere the figures stay 0).

// procCPU is the user+system CPU time process pid has used, or false.
func procCPU(pid int) (time.Duration, bool) {
	st, err := procstat.Read(pid)
	return st.CPU, err == nil
}

// selfCPU is this process's (the clients') user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSample is the CPU time used so far by the leader, by all servers
// together, and by the clients.
type cpuSample struct {
	leader, servers, clients time.Duration
	ok                       bool
}

func (c *cluster) cpuSample(leaderPid int) cpuSample {
	s := cpuSample{clients: selfCPU(), ok: true}
	for _, srv := range c.servers {
		if srv.cmd == nil || srv.cmd.Process == nil {
			continue
		}
		d, ok := procCPU(srv.cmd.Process.Pid)
		if !ok {
			return cpuSample{}
		}
		s.servers += d
		if srv.cmd.Process.Pid == leaderPid {
			s.leader = d
		}
	}
	return s
}

// perSubmit is the CPU milliseconds per committed submission between two
// samples.
func perSubmit(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return round3(float64(d.Microseconds()) / 1000 / float64(n))
}

// cpuPerSubmit is perSubmit of b-a when both samples were read.
func cpuPerSubmit(s0, s1 cpuSample, a, b time.Duration, n int64) float64 {
	if !s0.ok || !s1.ok {
		return 0
	}
	return perSubmit(b-a, n)
}
