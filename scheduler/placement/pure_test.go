package placement

import (
	"testing"

	"github.com/ark-sched/ark/internal/puretest"
)

// TestNoClockOrGlobalRandomness keeps the engine a function of its input:
// no file of the package reads the time of day or unseeded randomness (the
// leader passes times in: RunInfo's seconds, and policies take a seed).
func TestNoClockOrGlobalRandomness(t *testing.T) { puretest.NoClock(t) }
