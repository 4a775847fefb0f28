package agent

import (
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// prepareCheckpointDir gives a task running as another user its job's
// directory in a local (file://) checkpoint store: the agent creates it and
// hands it to the task's user, since the store's root is the agent's or the
// server's. The path is the servers' (store root + namespace + job ID),
// never the spec's; a ".." in it is refused all the same. Object stores
// (s3://) need nothing here.
func prepareCheckpointDir(uri, taskUser string) error {
	if taskUser == "" || !strings.HasPrefix(uri, "file://") {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("checkpoint store %q: %w", uri, err)
	}
	dir := u.Path
	if !filepath.IsAbs(dir) || u.Host != "" && u.Host != "localhost" {
		return nil // a relative store is the task's own business
	}
	for _, part := range strings.Split(dir, "/") {
		if part == ".." {
			return fmt.Errorf("checkpoint store %q: '..' in the path", uri)
		}
	}
	tu, err := user.Lookup(taskUser)
	if err != nil {
		if tu, err = user.LookupId(taskUser); err != nil {
			return fmt.Errorf("task user: %w", err)
		}
	}
	uid, _ := strconv.Atoi(tu.Uid)
	gid, _ := strconv.Atoi(tu.Gid)
	// The store root stays the agent's (searchable); the namespace's
	// directory and the job's are the task user's: the runtime opens the
	// store at the namespace (its staging dir lives there) and writes the
	// job's checkpoints below it.
	if err := os.MkdirAll(filepath.Dir(filepath.Dir(dir)), 0o711); err != nil {
		return fmt.Errorf("create checkpoint store dir: %w", err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create checkpoint dir: %w", err)
		}
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("checkpoint dir %s is not a directory", d)
		}
		if err := os.Lchown(d, uid, gid); err != nil {
			return fmt.Errorf("give checkpoint dir %s to %s: %w", d, taskUser, err)
		}
	}
	return nil
}
