package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemGPUShares: on an agent process with one fake GPU, two jobs
// asking for 500m each run side by side on GPU 0, each told its share;
// a third waits with the reason; when one ends, the third starts.
func TestSystemGPUShares(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"}, "--stop-grace", "1s")
	share := func(name string) string {
		return submitSpec(t, s.http, "name: "+name+"\nkind: batch\nresources: {gpuMilli: 500, gpuMemory: 20Gi, cpu: 100m, memory: 64Mi}\n"+
			"task: {driver: exec, exec: {command: [sh, -c, 'echo gpus=$CUDA_VISIBLE_DEVICES milli=$ARK_GPU_MILLI sm=$CUDA_MPS_ACTIVE_THREAD_PERCENTAGE mem=$CUDA_MPS_PINNED_DEVICE_MEM_LIMIT; sleep 300']}}\n")
	}
	c, _ := client.New(s.http)
	job := func(id string) *api.Job {
		j, _, err := c.Job(context.Background(), id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	running := func(id string) bool {
		j := job(id)
		return j.Status == api.JobRunning && len(j.Allocations) == 1 && j.Allocations[0].Status == api.AllocRunning
	}
	first, second := share("s1"), share("s2")
	waitUntil(t, 20*time.Second, "both shares running", func() bool { return running(first) && running(second) })
	for _, id := range []string{first, second} {
		a := job(id).Allocations[0]
		if len(a.GPUs) != 1 || a.GPUs[0] != 0 || a.GPUMilli != 500 || a.GPUMemoryBytes != 20<<30 {
			t.Errorf("%s holds %v %dm %d bytes, want GPU 0, 500m, 20Gi", id, a.GPUs, a.GPUMilli, a.GPUMemoryBytes)
		}
		waitUntil(t, 10*time.Second, id+" output", func() bool {
			out, err := cli(t, s.http, "job", "logs", id)
			return err == nil && strings.Contains(out, "gpus=0 milli=500 sm=50 mem=0=20480M")
		})
	}
	third := share("s3")
	waitUntil(t, 10*time.Second, "a reason for the third share", func() bool { return job(third).Reason != "" })
	if j := job(third); j.Status != api.JobPending || !strings.Contains(j.Reason, "1 node has no GPU with 500m and 20Gi free") {
		t.Errorf("third share: %s %q", j.Status, j.Reason)
	}
	st, err := cli(t, s.http, "job", "status", first)
	if err != nil || !strings.Contains(st, "500m of 1 GPU") || !strings.Contains(st, "0 (500m)") {
		t.Errorf("ark job status does not show the share (%v):\n%s", err, st)
	}
	ns, err := cli(t, s.http, "node", "status", "a")
	if err != nil || !strings.Contains(ns, first+"-") || !strings.Contains(ns, "(500m), ") {
		t.Errorf("ark node status does not show both shares of GPU 0 (%v):\n%s", err, ns)
	}
	if _, err := cli(t, s.http, "job", "cancel", first); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the third share running once the first stopped", func() bool { return running(third) })
}
