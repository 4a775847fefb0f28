package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Cgroups puts each task in its own cgroup v2 with the CPU and memory
// limits of its allocation. Where the kernel offers no cgroup v2 with the
// cpu and memory controllers (cgroup v1 or hybrid hosts, containers without
// delegation), tasks run without limits: Detect says why, once, and the
// agent logs it.
type Cgroups struct {
	// dir is Ark's parent cgroup ("/sys/fs/cgroup/ark").
	dir string
	// pids is set when the pids controller is there: each task's cgroup
	// gets a pids.max, which stops a fork bomb.
	pids bool
}

// DefaultPidsMax is each allocation's pids.max (processes and threads)
// where TaskConfig.PidsMax names none: far above what a training job's
// ranks, data loaders and compute threads use, far below what takes a node
// down.
const DefaultPidsMax = 16384

// DefaultCgroupRoot is where cgroup v2 is mounted on a pure v2 host.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// DetectCgroups prepares Ark's parent cgroup under root, or returns nil and
// the reason limits cannot be enforced.
func DetectCgroups(root string) (*Cgroups, string) {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Sprintf("no cgroup v2 at %s (%v)%s", root, errors.Unwrap(err), cgroupV1(root))
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(string(b)) {
		have[c] = true
	}
	if !have["cpu"] || !have["memory"] {
		return nil, fmt.Sprintf("cgroup v2 at %s lacks the cpu or memory controller (has %q)", root, strings.TrimSpace(string(b)))
	}
	dir := filepath.Join(root, "ark")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Sprintf("create %s: %v", dir, err)
	}
	enable := "+cpu +memory"
	if have["pids"] {
		enable += " +pids"
	}
	for _, d := range []string{root, dir} {
		if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(enable), 0o644); err != nil {
			return nil, fmt.Sprintf("enable the %s controllers in %s: %v", enable, d, err)
		}
	}
	return &Cgroups{dir: dir, pids: have["pids"]}, ""
}

// cgroupV1 says, for the reason limits are off, when root is a cgroup v1
// (or hybrid) hierarchy: controllers mounted one per directory.
func cgroupV1(root string) string {
	var v1 []string
	for _, c := range []string{"cpu", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err == nil {
			v1 = append(v1, c)
		}
	}
	if len(v1) == 0 {
		return ""
	}
	return fmt.Sprintf("; this host runs cgroup v1 (%s are v1 hierarchies under %s): no cpu, memory or pids.max limit holds a task", strings.Join(v1, ", "), root)
}

// taskCgroup is one task's cgroup.
type taskCgroup struct {
	dir string
	fd  int
}

// create makes a task's cgroup with its limits and opens it for
// clone-into-cgroup, so that the task starts inside it.
func (c *Cgroups) create(allocID string, cpuMilli, memBytes, pidsMax int64) (*taskCgroup, error) {
	dir := filepath.Join(c.dir, allocID)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if cpuMilli > 0 {
		// cpu.max is "QUOTA PERIOD" in microseconds: milli-CPUs x 100
		// per 100 ms.
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(fmt.Sprintf("%d 100000", cpuMilli*100)), 0o644); err != nil {
			return nil, fmt.Errorf("set cpu.max: %w", err)
		}
	}
	if memBytes > 0 {
		if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatInt(memBytes, 10)), 0o644); err != nil {
			return nil, fmt.Errorf("set memory.max: %w", err)
		}
	}
	if c.pids {
		if pidsMax <= 0 {
			pidsMax = DefaultPidsMax
		}
		if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.FormatInt(pidsMax, 10)), 0o644); err != nil {
			return nil, fmt.Errorf("set pids.max: %w", err)
		}
	}
	fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return &taskCgroup{dir: dir, fd: fd}, nil
}

// oomKilled reports whether the kernel's OOM killer ended a process of the
// cgroup.
func oomKilled(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
			return true
		}
	}
	return false
}

// removeCgroup deletes a task's cgroup once its processes are gone.
func removeCgroup(dir string) {
	if dir != "" {
		_ = os.Remove(dir)
	}
}
