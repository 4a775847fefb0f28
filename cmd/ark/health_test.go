package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestHealth: `ark health` (the containers' health check) passes against a
// real server with a leader and a real agent, and fails, saying where, when
// nothing listens.
func TestHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ark processes")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	agentHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startAgents(t, s.http, "1xH200:141Gi", []string{"n1"}, "--http", agentHTTP)

	code, out, _ := runArk(t, "health", "--addr", s.http)
	if code != exitOK || !strings.Contains(out, "leader s1 at ") {
		t.Errorf("health of a server with a leader: exit %d, %q", code, out)
	}
	// Only the first address counts: a dead first server is unhealthy
	// even if a later one would answer.
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	code, out, _ = runArk(t, "health", "--addr", dead+","+s.http, "--timeout", "2s")
	if code != exitFailure || !strings.Contains(out, "server http://"+dead) {
		t.Errorf("health of a dead server: exit %d, %q", code, out)
	}
	if code, out, _ = runArk(t, "health", "--agent", agentHTTP); code != exitOK {
		t.Errorf("health of a running agent: exit %d, %q", code, out)
	}
	code, out, _ = runArk(t, "health", "--agent", dead, "--timeout", "2s")
	if code != exitFailure || !strings.Contains(out, "agent "+dead) {
		t.Errorf("health of a dead agent: exit %d, %q", code, out)
	}
}
