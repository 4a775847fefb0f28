package driver

import (
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// landlockABI is the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// systemReadDirs are what a program needs to run: its loader and
// libraries, configuration (/etc/shadow and the like stay unreadable by
// mode: the task is not root), /proc and /sys, /run (resolv.conf's target,
// driver sockets), /opt (CUDA and vendor stacks).
var systemReadDirs = []string{"/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/run", "/proc", "/sys", "/dev"}

// deviceFiles may be opened for writing (and ioctl'd): the null and random
// devices, terminals, and the NVIDIA control and UVM nodes. The GPU nodes
// themselves are added from /dev (the ones not the allocation's read as
// /dev/null by then).
var deviceFiles = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
	"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"}

// applyLandlock confines the task's file system access: writes to its work
// directory, /tmp (when private), /dev/shm (ranks on one node share memory
// there), its job's checkpoint directory and a few devices; reads to the
// system directories above, its program and the data it names. Another
// task's work directory, the agent's data and every other path are out of
// reach even where their modes would let the task user in (every task may
// run as the same user).
func applyLandlock(sb *SandboxReport, c confineSpec) {
	abi := landlockABI()
	if abi == 0 {
		sb.Missing = append(sb.Missing, "landlock: not supported by this kernel or not enabled at boot (lsm=...landlock): file access is confined by the task user's permissions only")
		return
	}
	withRefer := func(r landlock.FSRule) landlock.FSRule {
		if abi >= 2 { // renames across directories: ABI 2 (Linux 5.19)
			return r.WithRefer()
		}
		return r
	}
	devs := append([]string{}, deviceFiles...)
	if ents, err := os.ReadDir("/dev"); err == nil {
		for _, e := range ents {
			if gpuNode.MatchString(e.Name()) {
				devs = append(devs, "/dev/"+e.Name())
			}
		}
	}
	rules := []landlock.Rule{
		landlock.RODirs(systemReadDirs...).IgnoreIfMissing(),
		landlock.RWFiles(devs...).WithIoctlDev().IgnoreIfMissing(),
		landlock.RWDirs("/dev/pts", "/dev/infiniband").WithIoctlDev().IgnoreIfMissing(),
		withRefer(landlock.RWDirs("/dev/shm", c.WorkRoot)).IgnoreIfMissing(),
	}
	if sb.PrivateTmp { // the host's /tmp is no place to write
		rules = append(rules, withRefer(landlock.RWDirs("/tmp")))
	}
	for _, p := range c.Read {
		rules = append(rules, pathRule(p, false))
	}
	for _, p := range c.Write {
		rules = append(rules, withRefer(pathRule(p, true)))
	}
	if err := landlock.V5.BestEffort().RestrictPaths(rules...); err != nil {
		sb.Missing = append(sb.Missing, fmt.Sprintf("landlock (ABI %d): %v", abi, err))
		return
	}
	sb.Landlock = abi
}

// pathRule grants read (or read and write) on a file or a directory tree.
func pathRule(p string, write bool) landlock.FSRule {
	fi, err := os.Stat(p)
	isDir := err != nil || fi.IsDir()
	switch {
	case isDir && write:
		return landlock.RWDirs(p).IgnoreIfMissing()
	case isDir:
		return landlock.RODirs(p).IgnoreIfMissing()
	case write:
		return landlock.RWFiles(p).IgnoreIfMissing()
	}
	return landlock.ROFiles(p).IgnoreIfMissing()
}
