package state

import (
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestFailureReasonQuotesStderr: a rank that fails with a stderr tail
// leaves its last lines in the job's reason, and the whole (bounded) tail
// on its allocation; a failed rank without one keeps the plain reason.
func TestFailureReasonQuotesStderr(t *testing.T) {
	h := gang(t)
	code := 2
	tail := "Traceback (most recent call last):\n  File \"train.py\", line 3\n    main()\nValueError: learning rate must be positive\n"
	h.ok(AllocStatusType, AllocStatusRequest{AllocID: allocID("g", 1), Time: t0.Add(time.Minute),
		Update: api.AllocStatusUpdate{Status: api.AllocFailed, ExitCode: &code, StderrTail: tail}})
	j := h.job("g")
	want := `rank 1 failed on node n1: exit code 2; stderr: File "train.py", line 3 | main() | ValueError: learning rate must be positive`
	if j.Status != api.JobFailed || j.Reason != want {
		t.Errorf("job %s, reason %q; want failed, %q", j.Status, j.Reason, want)
	}
	if a := h.alloc(allocID("g", 1)); a.StderrTail != tail {
		t.Errorf("allocation keeps stderr tail %q, want %q", a.StderrTail, tail)
	}

	h2 := gang(t)
	report(h2, allocID("g", 0), api.AllocFailed, 3, "")
	if j := h2.job("g"); j.Reason != "rank 0 failed on node n1: exit code 3" {
		t.Errorf("reason without a tail: %q", j.Reason)
	}
}

func TestStderrTailBounds(t *testing.T) {
	long := strings.Repeat("é", maxStderrTail) // 2 bytes a rune
	if got := boundTail(long); len(got) > maxStderrTail || !strings.HasPrefix(got, "é") {
		t.Errorf("boundTail kept %d bytes starting %q", len(got), got[:2])
	}
	r := reasonTail(strings.Repeat("x", 1000))
	if len(r) != reasonTailBytes+3 || !strings.HasPrefix(r, "...x") {
		t.Errorf("reasonTail of a long line: %d bytes %q...", len(r), r[:8])
	}
	if r := reasonTail("\n  \n"); r != "" {
		t.Errorf("reasonTail of blank lines = %q, want empty", r)
	}
}
