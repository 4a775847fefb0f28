package sched

import (
	"testing"

	"github.com/ark-sched/ark/internal/puretest"
)

// TestNoClockOrGlobalRandomness: the pass is a function of its input; the
// server passes the time and a seeded generator in.
func TestNoClockOrGlobalRandomness(t *testing.T) { puretest.NoClock(t) }

// TestNoIO keeps Raft, the network and the server out of the pass.
func TestNoIO(t *testing.T) {
	for _, e := range puretest.Deps(t) {
		if e.From != "github.com/ark-sched/ark/scheduler/sched" {
			continue
		}
		for _, banned := range []string{"net", "net/http", "os", "github.com/hashicorp/raft", "github.com/ark-sched/ark/scheduler/cluster", "github.com/ark-sched/ark/scheduler/server"} {
			if puretest.Under(e.To, banned) {
				t.Errorf("scheduler/sched imports %s", e.To)
			}
		}
	}
}
