package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/worker/inventory"
)

// TestTaskEnvShares: a shared allocation sees its one GPU, its share and
// the MPS limits; a whole-GPU one sees none of the share variables.
func TestTaskEnvShares(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := &Agent{cfg: Config{Name: "n1", Address: "127.0.0.1"}, ln: ln,
		inv: &inventory.Inventory{Fake: true, GPUs: []api.GPU{{Index: 0, UUID: "GPU-a"}, {Index: 1, UUID: "GPU-b"}}}}
	envOf := func(al *api.Allocation) map[string]string {
		m := map[string]string{}
		for _, kv := range a.taskEnv(al, t.TempDir()) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		al   *api.Allocation
		want map[string]string // "" : must be unset
	}{
		{"share with memory", &api.Allocation{GPUs: []int{1}, GPUMilli: 500, GPUMemoryBytes: 20 << 30}, map[string]string{
			"CUDA_VISIBLE_DEVICES": "1", "ARK_GPU_UUIDS": "GPU-b", "ARK_GPU_MILLI": "500",
			"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "50", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "0=20480M",
		}},
		{"small share without memory", &api.Allocation{GPUs: []int{0}, GPUMilli: 5}, map[string]string{
			"CUDA_VISIBLE_DEVICES": "0", "ARK_GPU_MILLI": "5", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "1",
			"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "",
		}},
		{"whole GPUs", &api.Allocation{GPUs: []int{0, 1}}, map[string]string{
			"CUDA_VISIBLE_DEVICES": "0,1", "ARK_GPU_MILLI": "", "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "", "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT": "",
		}},
	}
	t.Setenv("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "77") // the agent's own is not passed on
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envOf(tt.al)
			for k, want := range tt.want {
				got, ok := env[k]
				switch {
				case want == "" && ok:
					t.Errorf("%s=%q, want it unset", k, got)
				case want != "" && got != want:
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestShareUnenforced: on real GPUs a share without the MPS control
// daemon is flagged (its limits would not hold); with the daemon's pipe,
// on fake GPUs, or for whole GPUs it is not.
func TestShareUnenforced(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CUDA_MPS_PIPE_DIRECTORY", dir)
	real := &Agent{inv: &inventory.Inventory{}}
	fake := &Agent{inv: &inventory.Inventory{Fake: true}}
	share := &api.Allocation{GPUs: []int{0}, GPUMilli: 250}
	whole := &api.Allocation{GPUs: []int{0}}
	if why := real.shareUnenforced(share); !strings.Contains(why, "GPU share of 250m without CUDA MPS") || !strings.Contains(why, dir) {
		t.Errorf("no daemon: %q", why)
	}
	if why := fake.shareUnenforced(share) + real.shareUnenforced(whole); why != "" {
		t.Errorf("fake GPUs or a whole GPU flagged: %q", why)
	}
	if err := os.WriteFile(filepath.Join(dir, "control"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if why := real.shareUnenforced(share); why != "" {
		t.Errorf("with the daemon's pipe: %q", why)
	}
}
