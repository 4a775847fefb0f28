package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/inventory"
)

// inheritedEnv are the only variables of the agent's own environment a task
// gets (with every LC_* locale variable): what a program needs to find its
// tools and speak the node's language. Nothing else of the agent's
// environment reaches a task: not its token (ARK_TOKEN), not its cloud or
// proxy credentials.
var inheritedEnv = map[string]bool{"PATH": true, "LANG": true, "LANGUAGE": true, "TZ": true}

// defaultPath is the task's PATH when the agent has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// allowedEnv is the part of an environment (KEY=VALUE) a task may inherit.
func allowedEnv(environ []string) map[string]string {
	env := map[string]string{"PATH": defaultPath}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && (inheritedEnv[k] || strings.HasPrefix(k, "LC_")) {
			env[k] = v
		}
	}
	return env
}

// taskEnv builds a task's environment from an allowlist: PATH, LANG, LC_*
// and TZ of the agent's environment, HOME (the task's own directory: the
// agent's HOME is not the task user's), the spec's env (validation keeps it
// off Ark's names), then Ark's variables, which always win.
func (a *Agent) taskEnv(al *api.Allocation, dir string) []string {
	env := allowedEnv(os.Environ())
	workDir := filepath.Join(dir, "work")
	env["HOME"] = workDir
	if al.Task.Exec != nil {
		for k, v := range al.Task.Exec.Env {
			// Validation refuses these; a spec from an older server that
			// accepted them must not set them either.
			if !spec.IsReservedEnv(k) {
				env[k] = v
			}
		}
	}
	visible := make([]string, len(al.GPUs))
	uuids := make([]string, len(al.GPUs))
	var mine []api.GPU
	for i, g := range al.GPUs {
		visible[i] = strconv.Itoa(g)
		if g < len(a.inv.GPUs) {
			uuids[i] = a.inv.GPUs[g].UUID
			mine = append(mine, a.inv.GPUs[g])
		}
	}
	// NCCL uses exactly the NICs nearest the task's GPUs.
	if hca, ifname := inventory.NCCLEnv(inventory.NearestRDMA(mine, a.inv.RDMA)); hca != "" {
		env["NCCL_IB_HCA"] = hca
		if ifname != "" {
			env["NCCL_SOCKET_IFNAME"] = ifname
		}
	}
	if !a.inv.Fake {
		// CUDA takes UUIDs, which stay right whatever the index order.
		visible = uuids
	}
	for k, v := range map[string]string{
		"ARK_JOB_ID":           al.JobID,
		"ARK_ALLOC_ID":         al.ID,
		"ARK_NODE_NAME":        a.cfg.Name,
		"ARK_ALLOC_DIR":        workDir,
		"ARK_GPU_UUIDS":        strings.Join(uuids, ","),
		"RANK":                 strconv.Itoa(al.Rank),
		"WORLD_SIZE":           strconv.Itoa(al.WorldSize),
		"LOCAL_RANK":           strconv.Itoa(al.LocalRank),
		"LOCAL_WORLD_SIZE":     strconv.Itoa(al.LocalWorldSize),
		"NODE_RANK":            strconv.Itoa(al.NodeRank),
		"MASTER_ADDR":          al.MasterAddr,
		"MASTER_PORT":          strconv.Itoa(al.MasterPort),
		"CUDA_VISIBLE_DEVICES": strings.Join(visible, ","),
		"ARK_CHECKPOINT_URI":   al.CheckpointURI,
		"ARK_RESTART_COUNT":    strconv.Itoa(al.Attempt),
		"ARK_AGENT_ADDR":       "http://" + a.reportAddr(),
		"ARK_TASK_TOKEN":       a.taskToken(al.ID),
		"ARK_NODE_ADDR":        a.cfg.Address,
		"ARK_PORT":             strconv.Itoa(al.Port),
		"ARK_JOB_VERSION":      strconv.Itoa(al.JobVersion),
	} {
		env[k] = v
	}
	for k, v := range shareEnv(al) {
		env[k] = v
	}
	if p := checkpointKeyPath(al, dir); p != "" {
		env["ARK_CHECKPOINT_KEY_FILE"] = p // written by writeCheckpointKey
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// shareEnv is what a task holding a share of one GPU is told, and the CUDA
// MPS client limits that keep it to its share when the node runs an MPS
// control daemon (without one, CUDA ignores them): compute as a percentage
// of the GPU's SMs, and device memory as a limit on device 0, the one GPU
// CUDA_VISIBLE_DEVICES leaves visible. Whole-GPU tasks get none of these.
func shareEnv(al *api.Allocation) map[string]string {
	if al.GPUMilli <= 0 {
		return nil
	}
	env := map[string]string{
		"ARK_GPU_MILLI":                     strconv.FormatInt(al.GPUMilli, 10),
		"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": strconv.FormatInt(max(1, al.GPUMilli/10), 10),
	}
	if al.GPUMemoryBytes > 0 {
		env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = "0=" + strconv.FormatInt(max(1, al.GPUMemoryBytes>>20), 10) + "M"
	}
	return env
}

// mpsPipeDir is where the CUDA MPS control daemon listens
// (CUDA_MPS_PIPE_DIRECTORY, default /tmp/nvidia-mps).
func mpsPipeDir() string {
	if d := os.Getenv("CUDA_MPS_PIPE_DIRECTORY"); d != "" {
		return d
	}
	return "/tmp/nvidia-mps"
}

// shareUnenforced says why a shared allocation's limits will not hold on
// this node ("" when they will, or for whole GPUs and fake ones): the MPS
// variables the agent sets are read only by the MPS control daemon.
func (a *Agent) shareUnenforced(al *api.Allocation) string {
	if al.GPUMilli <= 0 || a.inv.Fake {
		return ""
	}
	if why, handled := a.mps.enforced(al); handled {
		return why // the agent runs (or failed to run) this GPU's daemon
	}
	if _, err := os.Stat(filepath.Join(mpsPipeDir(), "control")); err != nil {
		return fmt.Sprintf("GPU share of %dm without CUDA MPS on this node (no daemon at %s: start nvidia-cuda-mps-control -d): its compute and memory limits are not enforced", al.GPUMilli, mpsPipeDir())
	}
	return ""
}
