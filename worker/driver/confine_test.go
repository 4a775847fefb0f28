package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ark-sched/ark/scheduler/spec"
)

// The tests below run tasks as nobody, confined by their init, and check
// from inside what a tenant could try. They need root (to switch users and
// create namespaces); a test that depends on a kernel feature skips, naming
// it, where the kernel lacks it.

// probeEnv makes this test binary, run as a task, report on its own
// confinement (see probe).
const probeEnv = "ARK_TEST_PROBE"

// probe runs inside a confined task: it tries what a tenant would and
// prints one "NAME RESULT" line each.
func probe() int {
	try := func(name string, err error) {
		res := "ok"
		var errno syscall.Errno
		if errors.As(err, &errno) {
			res = unix.ErrnoName(errno)
		} else if err != nil {
			res = "error"
		}
		fmt.Printf("%s %s\n", name, res)
	}
	dir, _ := os.MkdirTemp(".", "m")
	try("mount", unix.Mount("none", dir, "tmpfs", 0, ""))
	try("unshare-user", unix.Unshare(unix.CLONE_NEWUSER))
	_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	try("clone3", e)
	_, _, e = unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
	try("ptrace-traceme", errnoOrNil(e))
	try("sethostname", unix.Sethostname([]byte("tenant")))
	try("bpf", errnoOrNil(func() syscall.Errno { _, _, e := unix.Syscall(unix.SYS_BPF, 0, 0, 0); return e }()))
	try("keyctl", errnoOrNil(func() syscall.Errno { _, _, e := unix.Syscall(unix.SYS_KEYCTL, 0, 0, 0); return e }()))
	fmt.Printf("pid %d ppid %d\n", os.Getpid(), os.Getppid())
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	fmt.Printf("procs %d\n", n)
	for _, ns := range []string{"mnt", "pid", "ipc", "uts"} {
		l, _ := os.Readlink("/proc/self/ns/" + ns)
		fmt.Printf("ns-%s %s\n", ns, l)
	}
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == "CapBnd:" || f[0] == "CapEff:" || f[0] == "NoNewPrivs:" || f[0] == "Seccomp:") {
			fmt.Printf("%s %s\n", strings.TrimSuffix(f[0], ":"), f[1])
		}
	}
	env, _ := os.ReadFile("/proc/self/environ")
	for _, kv := range strings.Split(string(env), "\x00") {
		if kv != "" {
			fmt.Printf("env %s\n", kv)
		}
	}
	return 0
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// probeDir holds probeBin's copy; TestMain removes it.
var probeDir string

// probeBin is a copy of this test binary the task user can run (the go
// build cache is root's, 0700).
var probeBin = sync.OnceValues(func() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "ark-probe-")
	if err != nil {
		return "", err
	}
	probeDir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst := filepath.Join(dir, "probe")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return "", err
	}
	return dst, f.Close()
})

// needRoot skips a test that must switch users and create namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: tasks are confined in namespaces and run as nobody only when the agent is root")
	}
}

// needLandlock skips a test of what only Landlock enforces.
func needLandlock(t *testing.T) {
	t.Helper()
	if landlockABI() == 0 {
		t.Skip("the kernel lacks Landlock (not built or not in lsm=): tasks of the same user are not kept apart")
	}
}

// allocsRoot is a directory for allocations outside /tmp, so that a task's
// private /tmp does not hide other allocations by itself: what keeps them
// apart there is Landlock.
func allocsRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "ark-confine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "allocs")
}

// confined starts argv as nobody in a new allocation under root.
func confined(t *testing.T, root, id string, env []string, argv ...string) (Handle, TaskConfig) {
	t.Helper()
	dir := filepath.Join(root, id)
	cfg := TaskConfig{
		AllocID: id, Dir: dir, Env: env, User: "nobody",
		Task:   spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: argv}},
		Stdout: filepath.Join(dir, "logs", "stdout.log"), Stderr: filepath.Join(dir, "logs", "stderr.log"),
	}
	h, err := Exec{}.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Stop(ctx, 0)
	})
	return h, cfg
}

// runConfined runs a shell script as a confined task and returns its output.
func runConfined(t *testing.T, root, id, script string) (Result, string, string) {
	t.Helper()
	h, cfg := confined(t, root, id, []string{testPath}, "/bin/sh", "-c", script)
	res := wait(t, h)
	return res, readFile(t, cfg.Stdout), readFile(t, cfg.Stderr)
}

func readSandbox(t *testing.T, dir string) SandboxReport {
	t.Helper()
	var sb SandboxReport
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, sandboxFile))), &sb); err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestConfinedTaskSyscalls: a tenant's task cannot mount, trace, create
// namespaces, load eBPF or use the keyring (seccomp: EPERM, where
// capabilities alone would let a user namespace or PTRACE_TRACEME
// through), gets ENOSYS for clone3 (glibc falls back to clone), has no
// capability and no_new_privs, sees only its own processes under its init
// (PID 1), lives in namespaces of its own, and gets exactly its
// environment (never the agent's ARK_TOKEN).
func TestConfinedTaskSyscalls(t *testing.T) {
	needRoot(t)
	t.Setenv("ARK_TOKEN", "agent-secret")
	bin, err := probeBin()
	if err != nil {
		t.Fatal(err)
	}
	root := allocsRoot(t)
	h, cfg := confined(t, root, "p1", []string{testPath, probeEnv + "=1", "RANK=0"}, bin)
	if res := wait(t, h); !res.Succeeded() {
		t.Fatalf("probe: %+v: %s", res, readFile(t, cfg.Stderr))
	}
	got := map[string]string{}
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, cfg.Stdout)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		if k == "env" {
			env = append(env, v)
			continue
		}
		got[k] = v
	}
	if !seccompOn(t) {
		t.Skip("the kernel lacks seccomp filters")
	}
	want := map[string]string{
		"mount": "EPERM", "unshare-user": "EPERM", "clone3": "ENOSYS", "ptrace-traceme": "EPERM",
		"sethostname": "EPERM", "bpf": "EPERM", "keyctl": "EPERM",
		"CapBnd": "0000000000000000", "CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
		"procs": "2",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// Its own PID namespace: its parent is its init, PID 1, and /proc
	// lists the two of them only.
	if !strings.HasSuffix(got["pid"], " ppid 1") {
		t.Errorf("pid line %q, want the init (1) as parent", got["pid"])
	}
	for _, ns := range []string{"mnt", "pid", "ipc", "uts"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		if got["ns-"+ns] == "" || got["ns-"+ns] == host {
			t.Errorf("task's %s namespace %q is the host's (%s)", ns, got["ns-"+ns], host)
		}
	}
	if strings.Join(env, "|") != strings.Join([]string{testPath, probeEnv + "=1", "RANK=0"}, "|") {
		t.Errorf("task's environment %q", env)
	}
	sb := readSandbox(t, cfg.Dir)
	t.Logf("probe: %v; sandbox.json: %+v", got, sb)
	if !sb.CapsDropped || !sb.NoNewPrivs || !sb.Seccomp || !sb.FreshProc || !sb.PrivateTmp || len(sb.Namespaces) != 4 {
		t.Errorf("sandbox.json: %+v", sb)
	}
	if sb.Landlock != landlockABI() {
		t.Errorf("sandbox.json: landlock ABI %d, the kernel's is %d", sb.Landlock, landlockABI())
	}
	if sb.Landlock > 0 && len(sb.Missing) > 0 {
		t.Errorf("sandbox.json lists missing protections on a kernel that has them all: %q", sb.Missing)
	}
}

func seccompOn(t *testing.T) bool {
	t.Helper()
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, 0)
	return e != unix.ENOSYS
}

// TestConfinedFileAccess: a task cannot read /etc/shadow (the user), nor
// read or write another task's work directory, nor write a world-writable
// directory outside its own (Landlock: every task runs as nobody); it can
// write its work dir, /dev/shm and a /tmp of its own that the host does
// not see.
func TestConfinedFileAccess(t *testing.T) {
	needRoot(t)
	root := allocsRoot(t)
	// A victim task leaves a file in its work dir.
	res, _, stderr := runConfined(t, root, "victim", "echo secret > secret; chmod 644 secret")
	if !res.Succeeded() {
		t.Fatalf("victim: %+v: %s", res, stderr)
	}
	victim := filepath.Join(root, "victim", "work")
	vtmp, err := os.MkdirTemp("/var/tmp", "ark-ww-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(vtmp)
	if err := os.Chmod(vtmp, 0o1777); err != nil {
		t.Fatal(err)
	}
	hostTmp := filepath.Join("/tmp", "ark-confine-"+strconv.Itoa(os.Getpid()))
	defer os.Remove(hostTmp)
	shm := filepath.Join("/dev/shm", "ark-confine-"+strconv.Itoa(os.Getpid()))
	defer os.Remove(shm)

	script := strings.Join([]string{
		"try() { if eval \"$2\" >/dev/null 2>&1; then echo \"$1 ok\"; else echo \"$1 denied\"; fi; }",
		"try shadow 'cat /etc/shadow'",
		"try read-other 'cat " + victim + "/secret'",
		"try list-other 'ls " + victim + "'",
		"try write-other 'echo x > " + victim + "/planted'",
		"try write-vartmp 'echo x > " + vtmp + "/planted'",
		"try write-own 'echo x > mine'",
		"try write-shm 'echo x > " + shm + "'",
		"try write-tmp 'echo x > " + hostTmp + "'",
		"try read-usr 'cat /etc/passwd'",
	}, "\n")
	res, out, stderr := runConfined(t, root, "attacker", script)
	if !res.Succeeded() {
		t.Fatalf("attacker: %+v: %s", res, stderr)
	}
	t.Logf("attacker: %s", out)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k] = v
	}
	for k, want := range map[string]string{"shadow": "denied", "write-own": "ok", "write-shm": "ok", "write-tmp": "ok", "read-usr": "ok"} {
		if got[k] != want {
			t.Errorf("%s: %s, want %s", k, got[k], want)
		}
	}
	if _, err := os.Stat(hostTmp); err == nil {
		t.Error("the task's /tmp file appeared in the host's /tmp")
	}
	if _, err := os.Stat(shm); err != nil {
		t.Errorf("the task's /dev/shm file is not in the host's /dev/shm (ranks share it): %v", err)
	}
	t.Run("landlock", func(t *testing.T) {
		needLandlock(t)
		for _, k := range []string{"read-other", "list-other", "write-other", "write-vartmp"} {
			if got[k] != "denied" {
				t.Errorf("%s: %s, want denied", k, got[k])
			}
		}
		for _, p := range []string{filepath.Join(victim, "planted"), filepath.Join(vtmp, "planted")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("the task wrote %s", p)
			}
		}
	})
}

// TestConfinedKeepsStatus: the init reports the task's own end, so a task
// killed by a signal still reads as such (not as its init's exit code).
func TestConfinedKeepsStatus(t *testing.T) {
	needRoot(t)
	root := allocsRoot(t)
	for i, c := range []struct {
		script string
		exit   int
		signal string
	}{{"exit 7", 7, ""}, {"kill -TERM $$", -1, "SIGTERM"}, {"kill -KILL $$", -1, "SIGKILL"}} {
		res, _, _ := runConfined(t, root, "s"+strconv.Itoa(i), c.script)
		if res.ExitCode != c.exit || res.Signal != c.signal {
			t.Errorf("%q: %+v, want exit %d signal %q", c.script, res, c.exit, c.signal)
		}
	}
}

// TestProbeSandbox: the agent's start-up line agrees with what a task's
// init records.
func TestProbeSandbox(t *testing.T) {
	missing := ProbeSandbox()
	joined := strings.Join(missing, "\n")
	if (os.Geteuid() != 0) != strings.Contains(joined, "not run as root") {
		t.Errorf("euid %d, probe says %q", os.Geteuid(), missing)
	}
	if (landlockABI() == 0) != strings.Contains(joined, "landlock") {
		t.Errorf("landlock ABI %d, probe says %q", landlockABI(), missing)
	}
}

// TestGPUNodesHidden: a task sees only its allocation's /dev/nvidiaN; the
// others read as /dev/null (char 1:3). Needs a host with NVIDIA nodes.
func TestGPUNodesHidden(t *testing.T) {
	needRoot(t)
	nodes, _ := filepath.Glob("/dev/nvidia[0-9]*")
	if len(nodes) == 0 {
		t.Skip("no /dev/nvidiaN device nodes on this host")
	}
	root := allocsRoot(t)
	mine := strings.TrimPrefix(nodes[0], "/dev/nvidia")
	for i, visible := range []string{"", mine} {
		env := []string{testPath, "CUDA_VISIBLE_DEVICES=" + visible}
		h, cfg := confined(t, root, "g"+strconv.Itoa(i), env, "/bin/sh", "-c", "for n in /dev/nvidia[0-9]*; do stat -c '%n %t:%T' $n; done")
		if res := wait(t, h); !res.Succeeded() {
			t.Fatalf("%+v: %s", res, readFile(t, cfg.Stderr))
		}
		out := readFile(t, cfg.Stdout)
		t.Logf("CUDA_VISIBLE_DEVICES=%q:\n%s", visible, out)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, dev, _ := strings.Cut(line, " ")
			hidden := dev == "1:3"
			if want := name != "/dev/nvidia"+visible || visible == ""; hidden != want {
				t.Errorf("CUDA_VISIBLE_DEVICES=%q: %s is %s, hidden=%v want %v", visible, name, dev, hidden, want)
			}
		}
		if sb := readSandbox(t, cfg.Dir); visible == "" && len(sb.HiddenGPUs) != len(nodes) {
			t.Errorf("sandbox.json hides %v, want all of %v", sb.HiddenGPUs, nodes)
		}
	}
}
