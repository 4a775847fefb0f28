package driver

import (
	"fmt"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// deniedSyscalls return EPERM to a task: mounting (old and new API),
// tracing and reading other processes' memory, kernel modules and kexec,
// the kernel keyring, eBPF, namespaces, changing root, swap, reboot, and
// opening files by handle (which walks around path checks).
var deniedSyscalls = []string{
	"mount", "umount2", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"keyctl", "add_key", "request_key", "bpf",
	"unshare", "setns", "pivot_root", "chroot",
	"swapon", "swapoff", "reboot", "open_by_handle_at",
}

// namespaceCloneFlags are the clone flags that create namespaces.
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// taskSeccompPolicy denies the calls above, clone with a namespace flag,
// and clone3 with ENOSYS: its flags sit in memory a filter cannot read, and
// ENOSYS (not EPERM) makes glibc fall back to clone, which is checked.
func taskSeccompPolicy() (seccomp.Policy, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return seccomp.Policy{}, err
	}
	var names []string
	for _, n := range deniedSyscalls {
		if _, ok := info.SyscallNames[n]; ok { // not every arch has each
			names = append(names, n)
		}
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: names},
			{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{{
				Name:       "clone",
				Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: namespaceCloneFlags}},
			}}},
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}, nil
}

// applySeccomp loads the task's filter on every thread of the init
// (TSYNC), and a second one that refuses system calls of any other
// architecture (32-bit calls on a 64-bit kernel), which the first lets
// through unchecked.
func applySeccomp(sb *SandboxReport) {
	if !seccomp.Supported() {
		sb.Missing = append(sb.Missing, "seccomp: not supported by this kernel: mount, ptrace, bpf and namespace calls are refused only by the missing capabilities")
		return
	}
	policy, err := taskSeccompPolicy()
	if err == nil {
		err = seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Flag: seccomp.FilterFlagTSync, Policy: policy})
	}
	if err == nil {
		err = loadArchFilter()
	}
	if err != nil {
		sb.Missing = append(sb.Missing, fmt.Sprintf("seccomp: %v", err))
		return
	}
	sb.Seccomp = true
}

// loadArchFilter allows only the native architecture's system calls.
func loadArchFilter() error {
	info, err := arch.GetInfo("")
	if err != nil {
		return err
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(info.ID), Jt: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("load the architecture filter: %w", errno)
	}
	return nil
}
