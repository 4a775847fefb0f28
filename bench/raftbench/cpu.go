package raftbench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// On a machine shared with other work, submissions/s moves with whatever
// else runs; the CPU time each submission costs the servers does not.
// cpuSample reads it from /proc (Linux; elsewhere the figures stay 0).

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on every
// Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time process pid has used, or false.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStat(string(b))
}

// parseStat reads utime+stime from a /proc/PID/stat line.
func parseStat(s string) (time.Duration, bool) {
	// The command name (field 2) may hold spaces and parentheses: count
	// from its last closing one.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // f[0] is field 3: utime is field 14, stime 15
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+st) * clockTick, true
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
