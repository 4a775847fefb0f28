// Package driver runs tasks on a node. A Driver starts a task from its
// allocation's task spec and environment and returns a Handle to wait on or
// stop it: the exec driver runs any command (torchrun, a script, a binary),
// the builtin driver runs Ark's own runtime (ark task train|eval|serve).
//
// A task is started by a supervisor (the ark binary re-executed,
// supervise.go) that outlives an agent restart, records the task's exit in
// status.json, and lets a restarted agent re-attach. The supervisor starts
// the task under a small init (taskinit_linux.go) that confines it: new
// mount, PID, IPC and UTS namespaces, a private /tmp, other GPUs' device
// nodes hidden, no capabilities, no_new_privs, Landlock and seccomp, then
// the task user's uid (confine*.go); sandbox.json records what applied.
// The task's directory layout is taskdir.go's; cgroup.go limits CPU,
// memory and pids where cgroup v2 is present.
package driver
