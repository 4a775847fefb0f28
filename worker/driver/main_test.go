package driver

import (
	"os"
	"testing"
)

// TestMain lets this test binary act as a task supervisor: the exec driver
// re-executes the running binary to supervise each task.
func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" { // run as a confined task: see confine_test.go
		os.Exit(probe())
	}
	MaybeSupervise()
	code := m.Run()
	if probeDir != "" {
		os.RemoveAll(probeDir)
	}
	os.Exit(code)
}
