package driver

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/spec"
)

// An allocation's directory (DataDir/allocs/ID) is laid out so that the
// task owns exactly one part of it and the agent, which runs as root, never
// follows anything the task could have planted:
//
//	ID/          0711 root   task.json, status.json (0600): the agent's
//	ID/logs/     0700 root   stdout.log, stderr.log (0600), written by the
//	                         supervisor through pipes
//	ID/work/     0700 task   the task's own directory ($ARK_ALLOC_DIR,
//	                         $HOME, the default working directory)
//
// The allocation directory is 0711 (search only) so that the task can reach
// work/ by its absolute path without listing or reading the agent's files.

// taskCreds are whom a task runs as.
type taskCreds struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// ErrRootTaskUser is returned for a task user with uid 0.
var ErrRootTaskUser = errors.New("tasks never run as root: name an unprivileged --task-user")

// lookupUser resolves a task user by name or numeric uid.
func lookupUser(name string) (taskCreds, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return taskCreds{}, fmt.Errorf("task user: %w", err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return taskCreds{}, fmt.Errorf("task user %s has a non-numeric uid or gid", name)
	}
	if uid == 0 {
		return taskCreds{}, fmt.Errorf("task user %s: %w", name, ErrRootTaskUser)
	}
	if os.Geteuid() != 0 && uint64(os.Geteuid()) != uid {
		return taskCreds{}, fmt.Errorf("running tasks as %s needs the agent to run as root", name)
	}
	// Only the user's primary group: supplementary groups (docker, disk,
	// video) are privileges the operator grants a login, not a tenant.
	return taskCreds{name: name, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}, nil
}

// makeTaskDirs creates an allocation's directory (see above) and the task's
// working directory in it: work/, or work/REL for a spec's workDir. REL is
// checked again here (the spec's validation is the first check; a spec from
// an older server may not have had it): an absolute path or a ".." is
// refused, never cleaned. Each directory is created new and given to the
// task's user, so nothing outside the allocation's directory is ever
// created or chowned.
func makeTaskDirs(dir, rel string, creds *taskCreds) (string, error) {
	if err := spec.CheckWorkDir(rel); err != nil {
		return "", fmt.Errorf("task.exec.workDir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", fmt.Errorf("create allocations dir: %w", err)
	}
	if err := mkdirMode(dir, 0o711); err != nil {
		return "", fmt.Errorf("create allocation dir: %w", err)
	}
	work := filepath.Join(dir, "work")
	if err := mkdirOwned(work, creds); err != nil {
		return "", err
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." {
			continue
		}
		work = filepath.Join(work, part)
		if err := mkdirOwned(work, creds); err != nil {
			return "", err
		}
	}
	return work, nil
}

// mkdirMode creates dir (or takes the existing one: an allocation started
// again in the same directory) and sets its mode past the umask. An
// existing path that is not a directory (a symlink) is refused.
func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	return os.Chmod(dir, mode)
}

// mkdirOwned creates a task-owned directory, 0700.
func mkdirOwned(dir string, creds *taskCreds) error {
	if err := mkdirMode(dir, 0o700); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	if creds != nil {
		// Lchown: never follow a link, whatever is there.
		if err := os.Lchown(dir, int(creds.uid), int(creds.gid)); err != nil {
			return fmt.Errorf("give the work dir to %s: %w", creds.name, err)
		}
	}
	return nil
}
