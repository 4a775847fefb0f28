package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/worker/inventory"
)

// standInMPS writes an executable that stands in for
// nvidia-cuda-mps-control: it appends each invocation (arguments, the
// daemon's directories and GPU, and each command read on stdin) to record,
// and, like the real one, with -d creates the control pipe (refusing when
// one exists) and on quit removes it. fail makes -d exit 1 with a message.
func standInMPS(t *testing.T, fail bool) (bin, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "record")
	bin = filepath.Join(dir, MPSControlName)
	failLine := ""
	if fail {
		failLine = `echo "cannot open /dev/nvidiactl" >&2; exit 1`
	}
	script := fmt.Sprintf(`#!/bin/sh
rec=%q
d=$(basename "$(dirname "$CUDA_MPS_PIPE_DIRECTORY")")
if [ "$1" = "-d" ]; then
	echo "start $d pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY visible=$CUDA_VISIBLE_DEVICES" >> "$rec"
	%s
	if [ -e "$CUDA_MPS_PIPE_DIRECTORY/control" ]; then echo "An instance of this daemon is already running" >&2; exit 1; fi
	mkfifo "$CUDA_MPS_PIPE_DIRECTORY/control"
	echo "daemon started" >> "$CUDA_MPS_LOG_DIRECTORY/control.log"
	exit 0
fi
while read -r cmd; do
	echo "$cmd $d" >> "$rec"
	[ "$cmd" = quit ] && rm -f "$CUDA_MPS_PIPE_DIRECTORY/control"
done
exit 0
`, record, failLine)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, record
}

func readRecord(t *testing.T, record string) []string {
	t.Helper()
	b, err := os.ReadFile(record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// Keep the command and the GPU; the paths are checked apart.
		f := strings.Fields(l)
		out = append(out, f[0]+" "+f[1])
	}
	return out
}

func share(id string) *api.Allocation {
	return &api.Allocation{ID: id, GPUs: []int{0}, GPUMilli: 250}
}

// TestMPSDaemonPerGPU: the first share of a GPU starts its daemon (with its
// own pipe and log directories and only that GPU visible), later shares of
// it reuse it, and the last one to end makes it quit.
func TestMPSDaemonPerGPU(t *testing.T) {
	bin, record := standInMPS(t, false)
	data := t.TempDir()
	m := newMPS(bin, data, zaptest.NewLogger(t))

	pipeA := m.acquire(share("a1"), []string{"GPU-aaa"})
	if want := filepath.Join(data, "mps", "GPU-aaa", "pipe"); pipeA != want {
		t.Fatalf("pipe %q, want %q", pipeA, want)
	}
	if _, err := os.Stat(filepath.Join(pipeA, "control")); err != nil {
		t.Fatalf("daemon not up when acquire returned: %v", err)
	}
	b, _ := os.ReadFile(record)
	if want := "start GPU-aaa pipe=" + pipeA + " log=" + filepath.Join(data, "mps", "GPU-aaa", "log") + " visible=GPU-aaa\n"; string(b) != want {
		t.Errorf("daemon started with\n%q\nwant\n%q", b, want)
	}
	if p := m.acquire(share("a2"), []string{"GPU-aaa"}); p != pipeA {
		t.Errorf("second share of the GPU got pipe %q", p)
	}
	pipeB := m.acquire(share("b1"), []string{"GPU-bbb"})
	for _, id := range []string{"a1", "a2", "b1"} {
		if why, handled := m.enforced(share(id)); why != "" || !handled {
			t.Errorf("%s: enforced = %q, %v; want a daemon serving it", id, why, handled)
		}
	}
	m.release("a1")
	if got, want := readRecord(t, record), []string{"start GPU-aaa", "start GPU-bbb"}; !equal(got, want) {
		t.Errorf("after one of two shares ended: %v, want %v", got, want)
	}
	m.release("a2")
	m.release("b1")
	m.release("b1") // twice: nothing more
	if got, want := readRecord(t, record), []string{"start GPU-aaa", "start GPU-bbb", "quit GPU-aaa", "quit GPU-bbb"}; !equal(got, want) {
		t.Errorf("control commands %v, want %v", got, want)
	}
	for _, p := range []string{pipeA, pipeB} {
		if _, err := os.Stat(filepath.Join(p, "control")); err == nil {
			t.Errorf("%s/control still there after quit", p)
		}
	}
	// A new share after the daemon quit starts it again.
	m.acquire(share("a3"), []string{"GPU-aaa"})
	m.release("a3")
	if got := readRecord(t, record); len(got) != 6 || got[4] != "start GPU-aaa" || got[5] != "quit GPU-aaa" {
		t.Errorf("restart: %v", got)
	}
}

// TestMPSStartFailsSaysWhy: a daemon that does not start leaves the share
// running unenforced, and its allocation says why, with the program's
// output.
func TestMPSStartFailsSaysWhy(t *testing.T) {
	bin, record := standInMPS(t, true)
	m := newMPS(bin, t.TempDir(), zaptest.NewLogger(t))
	if p := m.acquire(share("a1"), []string{"GPU-aaa"}); p != "" {
		t.Errorf("pipe %q from a daemon that did not start", p)
	}
	why, handled := m.enforced(share("a1"))
	if !handled || !strings.Contains(why, "GPU share of 250m without CUDA MPS") || !strings.Contains(why, "cannot open /dev/nvidiactl") {
		t.Errorf("enforced = %q, %v", why, handled)
	}
	m.release("a1")
	if got := readRecord(t, record); !equal(got, []string{"start GPU-aaa"}) {
		t.Errorf("control commands %v: no quit for a daemon that never ran", got)
	}
}

// TestMPSAbsent: without the control program nothing runs and the
// allocation says so, as it always has.
func TestMPSAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CUDA_MPS_PIPE_DIRECTORY", t.TempDir())
	a := &Agent{inv: &inventory.Inventory{GPUs: []api.GPU{{UUID: "GPU-aaa"}}}, mps: newMPS("", t.TempDir(), zaptest.NewLogger(t))}
	al := share("a1")
	if p := a.mps.acquire(al, a.shareGPUUUIDs(al)); p != "" {
		t.Errorf("pipe %q without the control program", p)
	}
	if why := a.shareUnenforced(al); !strings.Contains(why, "without CUDA MPS on this node") {
		t.Errorf("shareUnenforced = %q", why)
	}
	a.mps.release(al.ID)
}

// TestMPSWholeAndFakeGPUs: whole GPUs and fake ones start nothing.
func TestMPSWholeAndFakeGPUs(t *testing.T) {
	bin, record := standInMPS(t, false)
	real := &Agent{inv: &inventory.Inventory{GPUs: []api.GPU{{UUID: "GPU-aaa"}}}, mps: newMPS(bin, t.TempDir(), zaptest.NewLogger(t))}
	fake := &Agent{inv: &inventory.Inventory{Fake: true, GPUs: []api.GPU{{UUID: "GPU-fake-0"}}}, mps: real.mps}
	whole := &api.Allocation{ID: "w", GPUs: []int{0}}
	if p := real.mps.acquire(whole, real.shareGPUUUIDs(whole)) + fake.mps.acquire(share("f"), fake.shareGPUUUIDs(share("f"))); p != "" {
		t.Errorf("pipe %q", p)
	}
	if got := readRecord(t, record); got != nil {
		t.Errorf("control commands %v", got)
	}
}

// TestMPSAdoptAndSweep: after an agent restart, the daemon of a GPU whose
// share still runs is adopted (not started twice) and one of a GPU without
// shares is stopped.
func TestMPSAdoptAndSweep(t *testing.T) {
	bin, record := standInMPS(t, false)
	data := t.TempDir()
	for _, g := range []string{"GPU-kept", "GPU-old"} {
		p := filepath.Join(data, "mps", g, "pipe")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "control"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := newMPS(bin, data, zaptest.NewLogger(t))
	m.acquire(share("k"), []string{"GPU-kept"})
	m.sweep()
	if got := readRecord(t, record); !equal(got, []string{"quit GPU-old"}) {
		t.Errorf("control commands %v, want only quit GPU-old", got)
	}
	m.release("k")
	if got := readRecord(t, record); !equal(got, []string{"quit GPU-old", "quit GPU-kept"}) {
		t.Errorf("control commands %v", got)
	}
}

// TestMPSRunsWithShareOnAgent: an agent on (mock) real GPUs runs a share's
// task with the daemon of its GPU up and the pipe in its environment; the
// daemon quits when the task ends and the allocation reports no warning.
func TestMPSRunsWithShareOnAgent(t *testing.T) {
	bin, record := standInMPS(t, false)
	c := clusterCfg(t, 1, func(cfg *Config) {
		cfg.FakeGPUs, cfg.MockNVML, cfg.MPSControl = "", "dgxh200", bin
	})
	ctx := context.Background()
	resp, err := c.SubmitJob(ctx, []byte(`{"name": "mps", "kind": "batch", "replicas": 1,
		"resources": {"gpuMilli": 500, "gpuMemory": "20Gi", "cpu": "100m", "memory": "64Mi"},
		"task": {"driver": "exec", "exec": {"command": ["/bin/sh", "-c",
			"echo pipe=$CUDA_MPS_PIPE_DIRECTORY sm=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE mem=$CUDA_MPS_PINNED_DEVICE_MEM_LIMIT; sleep 2"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.ID
	// While it runs, the allocation does not warn of unenforced limits.
	waitFor(t, 20*time.Second, "the share to run", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil || len(j.Allocations) == 0 || j.Allocations[0].Status != api.AllocRunning {
			return false
		}
		if m := j.Allocations[0].Message; m != "" {
			t.Errorf("running allocation says %q with the daemon up", m)
		}
		return true
	})
	job := waitJob(t, c, id, 30*time.Second)
	if job.Status != api.JobSucceeded {
		t.Fatalf("job %s: %s", job.Status, job.Reason)
	}
	out := logs(t, c, id, 0)
	if !strings.Contains(out, "/mps/GPU-") || !strings.Contains(out, "/pipe sm=50 mem=0=20480M") {
		t.Errorf("task output %q: want its GPU's pipe directory and the limits", out)
	}
	waitFor(t, 10*time.Second, "the daemon to quit", func() bool { return len(readRecord(t, record)) == 2 })
	got := readRecord(t, record)
	if !strings.HasPrefix(got[0], "start GPU-") || got[1] != "quit"+strings.TrimPrefix(got[0], "start") {
		t.Errorf("control commands %v: want one start and one quit of the same GPU", got)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
