package driver

import (
	"os"
	"testing"
)

// TestMain lets this test binary act as a task supervisor: the exec driver
// re-executes the running binary to supervise each task.
func TestMain(m *testing.M) {
	MaybeSupervise()
	os.Exit(m.Run())
}
