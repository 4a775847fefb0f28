package agent

import (
	"os"
	"testing"

	"github.com/ark-sched/ark/worker/driver"
)

// TestMain lets this test binary act as a task supervisor: the exec driver
// re-executes the running binary to supervise each task.
func TestMain(m *testing.M) {
	driver.MaybeSupervise()
	os.Exit(m.Run())
}
