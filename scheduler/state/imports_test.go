package state

import (
	"testing"

	"github.com/ark-sched/ark/internal/puretest"
)

// TestNoPlacementRules keeps placement rules out of the FSM: they run on
// the leader before the commit (scheduler/sched.Verify), so that a change
// to them never changes how an old log replays, and two servers of
// different versions (a rolling upgrade) reach the same state.
func TestNoPlacementRules(t *testing.T) {
	for _, e := range puretest.Deps(t) {
		for _, banned := range []string{"github.com/ark-sched/ark/scheduler/placement", "github.com/ark-sched/ark/scheduler/sched"} {
			if puretest.Under(e.To, banned) {
				t.Errorf("scheduler/state depends on %s (imported by %s)", e.To, e.From)
			}
		}
	}
}
