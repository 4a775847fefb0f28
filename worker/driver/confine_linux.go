package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// initSpec is what the supervisor hands the init (in ARK_TASKINIT).
type initSpec struct {
	Path    string      `json:"path"`
	Args    []string    `json:"args"`
	Env     []string    `json:"env"`
	Creds   bool        `json:"creds,omitempty"`
	UID     uint32      `json:"uid,omitempty"`
	GID     uint32      `json:"gid,omitempty"`
	Groups  []uint32    `json:"groups,omitempty"`
	Confine confineSpec `json:"confine"`
}

// initReport is one message from the init to the supervisor, on fd 3: what
// confines the task (before it starts), then how it ended.
type initReport struct {
	Sandbox *SandboxReport `json:"sandbox,omitempty"`
	Exit    *exitStatus    `json:"exit,omitempty"`
}

// reportFD is the init's end of the pipe to its supervisor.
const reportFD = 3

// maybeTaskInit turns this process into a task's init when its supervisor
// started it as one, and never returns then.
func maybeTaskInit() {
	raw := os.Getenv(taskInitEnv)
	if raw == "" {
		return
	}
	// Capabilities, no_new_privs, Landlock (below ABI 8) and the seccomp
	// filter of the thread that forks the task are what the task inherits:
	// everything happens on this one thread, which also forks.
	runtime.LockOSThread()
	os.Exit(taskInit(raw))
}

func taskInit(raw string) int {
	// The report pipe must not reach the task.
	syscall.CloseOnExec(reportFD)
	rep := os.NewFile(reportFD, "report")
	enc := json.NewEncoder(rep)
	fail := func(code int, format string, args ...any) int {
		st := exitStatus{ExitCode: code, Error: fmt.Sprintf(format, args...)}
		fmt.Fprintln(os.Stderr, "ark task init:", st.Error)
		_ = enc.Encode(initReport{Exit: &st})
		return code
	}
	var spec initSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fail(127, "bad spec: %v", err)
	}
	// Signals for the task reach it through its process group (the
	// agent signals the whole group); the init catches them so that it
	// outlives the task and reports how it ended, and passes them on to
	// processes the task moved to groups of their own.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go forwardSignals(sigs)

	sb := &SandboxReport{UID: os.Geteuid()}
	if spec.Creds {
		sb.UID = int(spec.UID)
	}
	c := spec.Confine
	if c.Namespaces {
		sb.Namespaces = []string{"mnt", "pid", "ipc", "uts"}
		setupMounts(sb, c, spec.Env)
	} else {
		sb.Missing = append(sb.Missing, "namespaces: the agent does not run as root, so the task shares the host's mount, PID, IPC and UTS namespaces")
	}
	// Go's exec switches the user before it changes directory: change it
	// here, while still root, into a directory only the task user reads.
	if err := os.Chdir(c.Cwd); err != nil {
		return fail(127, "enter the work dir: %v", err)
	}
	dropCaps(sb)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		sb.Missing = append(sb.Missing, "no_new_privs: "+err.Error())
	} else {
		sb.NoNewPrivs = true
	}
	applyLandlock(sb, c)
	applySeccomp(sb)
	sort.Strings(sb.Missing)
	_ = enc.Encode(initReport{Sandbox: sb})

	attr := &syscall.ProcAttr{
		Env:   spec.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{},
	}
	if spec.Creds {
		attr.Sys.Credential = &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups}
	}
	pid, err := syscall.ForkExec(spec.Path, append([]string{spec.Path}, spec.Args...), attr)
	if err != nil {
		return fail(127, "start %s: %v", spec.Path, err)
	}
	st := reap(pid)
	_ = enc.Encode(initReport{Exit: &st})
	if st.Signal != "" {
		return 128 + int(signalNumber(st.Signal))
	}
	return st.ExitCode
}

// reap waits for the task, reaping whatever else ends meanwhile (as PID 1,
// the init inherits the task's orphans). When the task ends the init
// returns, and the kernel kills what is left of the namespace with it.
func reap(task int) exitStatus {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return exitStatus{ExitCode: -1, Error: "wait for the task: " + err.Error()}
		}
		if pid != task {
			continue
		}
		switch {
		case ws.Exited():
			return exitStatus{ExitCode: ws.ExitStatus()}
		case ws.Signaled():
			return exitStatus{ExitCode: -1, Signal: signalName(ws.Signal())}
		}
	}
}

// signalNumber undoes signalName for the init's exit code.
func signalNumber(name string) syscall.Signal {
	for s := syscall.Signal(1); s < 65; s++ {
		if signalName(s) == name {
			return s
		}
	}
	return 0
}

// forwardSignals passes a signal the init got on to the processes of the
// namespace the agent's group signal did not reach: those in a process
// group of their own (in the namespace, the init's group, which is the
// supervisor's, reads as 0).
func forwardSignals(sigs <-chan os.Signal) {
	for s := range sigs {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if pg, err := syscall.Getpgid(pid); err == nil && pg != 0 && pg != syscall.Getpgrp() {
				_ = syscall.Kill(pid, s.(syscall.Signal))
			}
		}
	}
}

// setupMounts gives the task its own view of the file system: nothing it
// mounts (nothing: seccomp refuses) or the init mounts propagates to the
// host; /proc shows only its own processes; /tmp is a fresh tmpfs; the GPU
// device nodes that are not the allocation's read as /dev/null.
func setupMounts(sb *SandboxReport, c confineSpec, env []string) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		// Without private mounts, anything mounted here would show on
		// the host: mount nothing.
		sb.Missing = append(sb.Missing, "private mounts, /proc, /tmp, GPU hiding: make / private: "+err.Error())
		return
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		sb.Missing = append(sb.Missing, "fresh /proc: "+err.Error())
	} else {
		sb.FreshProc = true
	}
	if err := privateTmp(c); err != nil {
		sb.Missing = append(sb.Missing, "private /tmp: "+err.Error())
	} else {
		sb.PrivateTmp = true
	}
	hidden, err := hideGPUs(envValue(env, "CUDA_VISIBLE_DEVICES"))
	sb.HiddenGPUs = hidden
	if err != nil {
		sb.Missing = append(sb.Missing, "GPU hiding: "+err.Error())
	}
}

// privateTmp mounts a fresh tmpfs on /tmp. What the task needs from the
// host's /tmp (its work directory when the data dir lives there, its
// program, its data, the CUDA MPS pipes) is bound back at the same path.
func privateTmp(c confineSpec) error {
	keep := []string{c.WorkRoot, "/tmp/nvidia-mps"}
	keep = append(keep, c.Read...)
	keep = append(keep, c.Write...)
	sort.Strings(keep)
	type bound struct {
		path string
		fd   int
		dir  bool
	}
	var binds []bound
	defer func() {
		for _, b := range binds {
			syscall.Close(b.fd)
		}
	}()
	for _, p := range keep {
		if !strings.HasPrefix(p, "/tmp/") {
			continue
		}
		// Below one already kept: visible through it.
		if n := len(binds); n > 0 && strings.HasPrefix(p, binds[n-1].path+"/") || n > 0 && p == binds[n-1].path {
			continue
		}
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not there: nothing to keep
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			continue
		}
		binds = append(binds, bound{p, fd, st.Mode&unix.S_IFMT == unix.S_IFDIR})
	}
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	for _, b := range binds {
		// Parents are root's 0755 (only searched); the kept path is the
		// host's own, bound through the fd opened before /tmp was covered.
		if err := os.MkdirAll(filepath.Dir(b.path), 0o755); err != nil {
			return err
		}
		if b.dir {
			if err := os.Mkdir(b.path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		} else if f, err := os.OpenFile(b.path, os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
			return err
		} else {
			f.Close()
		}
		src := "/proc/self/fd/" + strconv.Itoa(b.fd)
		if err := unix.Mount(src, b.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("keep %s: %w", b.path, err)
		}
	}
	return nil
}

var gpuNode = regexp.MustCompile(`^nvidia([0-9]+)$`)

// hideGPUs binds /dev/null over every /dev/nvidiaN whose minor number is
// not among the allocation's GPUs (CUDA_VISIBLE_DEVICES: indices, or UUIDs
// mapped through /proc/driver/nvidia). It returns the nodes hidden.
func hideGPUs(visible string) ([]string, error) {
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return nil, err
	}
	var nodes []string
	for _, e := range ents {
		if gpuNode.MatchString(e.Name()) {
			nodes = append(nodes, e.Name())
		}
	}
	if len(nodes) == 0 {
		return nil, nil // no NVIDIA device nodes on this host
	}
	allowed := map[string]bool{}
	var uuidMinor map[string]string
	for _, v := range strings.Split(visible, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if _, err := strconv.Atoi(v); err == nil {
			allowed["nvidia"+v] = true
			continue
		}
		if uuidMinor == nil {
			uuidMinor = nvidiaMinors()
		}
		m, ok := uuidMinor[v]
		if !ok {
			return nil, fmt.Errorf("cannot tell which device node GPU %s is: every GPU stays visible", v)
		}
		allowed["nvidia"+m] = true
	}
	var hidden []string
	for _, n := range nodes {
		if allowed[n] {
			continue
		}
		if err := unix.Mount("/dev/null", "/dev/"+n, "", unix.MS_BIND, ""); err != nil {
			return hidden, fmt.Errorf("hide /dev/%s: %w", n, err)
		}
		hidden = append(hidden, "/dev/"+n)
	}
	return hidden, nil
}

// nvidiaMinors maps GPU UUIDs to device minor numbers, from the driver's
// /proc/driver/nvidia/gpus/*/information.
func nvidiaMinors() map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uuid, minor string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "GPU UUID":
				uuid = strings.TrimSpace(v)
			case "Device Minor":
				minor = strings.TrimSpace(v)
			}
		}
		if uuid != "" && minor != "" {
			out[uuid] = minor
		}
	}
	return out
}

// dropCaps empties this thread's capability bounding set, inheritable and
// ambient sets: the task, even a root one, starts with no capability and
// can gain none (a setuid-root file would need the bounding set).
func dropCaps(sb *SandboxReport) {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			sb.Missing = append(sb.Missing, fmt.Sprintf("capability bounding set: drop %d: %v", c, err))
			return
		}
	}
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		data[0].Inheritable, data[1].Inheritable = 0, 0
		_ = unix.Capset(&hdr, &data[0])
	}
	sb.CapsDropped = true
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, key+"="); ok {
			v = s
		}
	}
	return v
}

// ProbeSandbox says, one line each, which parts of a task's confinement
// this host cannot apply (none when it applies them all), for the agent to
// log once at start; each allocation's sandbox.json records what its init
// did apply.
func ProbeSandbox() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "namespaces, private /proc and /tmp, GPU hiding, task user: the agent does not run as root")
	}
	if landlockABI() == 0 {
		missing = append(missing, "landlock: not supported by this kernel or not enabled at boot: tasks of the same user can read each other's work directories")
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, 0); e == unix.ENOSYS {
		missing = append(missing, "seccomp: not supported by this kernel: mount, ptrace, bpf and namespace calls are refused only by the missing capabilities")
	}
	return missing
}
