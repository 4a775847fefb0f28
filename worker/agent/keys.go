package agent

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ark-sched/ark/scheduler/api"
)

// An allocation's checkpoint key (its namespace's data key, which the
// servers hand this agent with the allocation) is put in the allocation's
// directory, beside the agent's own files and outside the task's work/ (so
// nothing the task planted is followed), readable by the task's user only
// (0400), and its path given to the task as ARK_CHECKPOINT_KEY_FILE. It is
// never put in the environment: /proc/PID/environ and crash dumps keep
// that. The file holds one line, "KEYID KEY" (KEY in base64).
const checkpointKeyFile = "checkpoint.key"

// checkpointKeyPath is where an allocation's key goes, "" for an
// allocation without one.
func checkpointKeyPath(al *api.Allocation, dir string) string {
	if al.CheckpointKey == nil {
		return ""
	}
	return filepath.Join(dir, checkpointKeyFile)
}

// writeCheckpointKey writes an allocation's checkpoint key (when it has
// one) to its directory, owned by the task user, before the task starts.
func writeCheckpointKey(al *api.Allocation, dir, taskUser string) error {
	path := checkpointKeyPath(al, dir)
	if path == "" {
		return nil
	}
	uid, gid := -1, -1
	if taskUser != "" {
		var err error
		if uid, gid, err = lookupTaskIDs(taskUser); err != nil {
			return err
		}
	}
	// The allocation directory is the agent's (0711): the driver takes it
	// as it finds it.
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return fmt.Errorf("create allocations dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create allocation dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checkpoint key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o400)
	if err != nil {
		return fmt.Errorf("checkpoint key: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s %s\n", al.CheckpointKey.ID, base64.StdEncoding.EncodeToString(al.CheckpointKey.Key))
	if err == nil && uid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Chmod(0o400)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("checkpoint key for the task: %w", err)
	}
	return nil
}

// lookupTaskIDs resolves the task user (a name or a uid).
func lookupTaskIDs(taskUser string) (uid, gid int, err error) {
	u, err := user.Lookup(taskUser)
	if err != nil {
		if u, err = user.LookupId(taskUser); err != nil {
			return 0, 0, fmt.Errorf("task user: %w", err)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("task user %s has a non-numeric uid or gid", taskUser)
	}
	return uid, gid, nil
}
