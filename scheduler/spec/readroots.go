package spec

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ark-sched/ark/storage/checkpoint/ckptpath"
)

// A builtin task runs confined (worker/driver: Landlock): it may read the
// local paths its spec named when it started (and their stores), and no other, for as long
// as it runs. Which paths those are is decided here, once, for the two
// that depend on it: the driver, which opens them to the task, and the
// scheduler, which applies a change of a service's adapters in place only
// while every local path of the new spec is one its running replicas may
// already read (scheduler/sched ReplicaChanged); otherwise the replicas
// are rolled, and the new ones start with the new paths.

// ReadRoots lists the local paths a builtin task b may read: its data
// (that path alone), and each local checkpoint of its base (every item)
// and adapters with the store it is read through (checkpointStore), so
// that an adapter added later in the same store is read in place. A
// location that is not local (s3://, a relative path, a model://
// reference, which the servers resolve before they store a spec) gives
// none: a task reads it through the network or not at all. Sorted,
// without duplicates.
//
// shared is the local directory of the cluster's checkpoint store (STORE
// of every job's STORE/NAMESPACE/JOB; "" when the store is not local),
// whose subdirectories are the namespaces': a checkpoint whose store
// would be it, or a directory above it, opens its own path alone. That
// is what a job's latest checkpoint named as STORE/NAMESPACE/JOB reads
// like (STEP JOB of job NAMESPACE, store STORE): without this rule a
// tenant naming its own checkpoints so would be given every namespace's.
func ReadRoots(b *BuiltinTask, shared string) []string {
	if b == nil {
		return nil
	}
	var out []string
	if p := LocalPath(b.Data); p != "" {
		out = append(out, p)
	}
	ckpts := strings.Split(b.Base, ",")
	for _, a := range b.Adapters {
		ckpts = append(ckpts, a.URI)
	}
	for _, uri := range ckpts {
		if p := LocalPath(uri); p != "" {
			out = append(out, p)
			if st := checkpointStore(p); st != "" && (shared == "" || !pathUnder(shared, st)) {
				out = append(out, st)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkpointStore is the store directory a local checkpoint p is read
// through (worker/train OpenCheckpoint): STORE of STORE/JOB/STEP (a step
// as checkpoint.SplitURI reads it: ckptpath.ParseURIStep, within
// [0, MaxStep]), STORE of STORE/JOB. "" when that would be the
// filesystem's root: a checkpoint at /job/7 opens /job/7 alone, never
// everything (a rule of "two directories up" once gave /data/corpus.txt's
// task all of /).
func checkpointStore(p string) string {
	dir := filepath.Dir(p)
	if n, ok := ckptpath.ParseURIStep(filepath.Base(p)); ok && n >= 0 && n <= ckptpath.MaxStep {
		dir = filepath.Dir(dir)
	}
	if dir == "/" || dir == "." {
		return ""
	}
	return dir
}

// LocalPath is the absolute, cleaned local path of a file:// URI (on no
// host or localhost) or of a bare absolute path; "" for anything else
// (s3://, a relative path, a catalog reference).
func LocalPath(uri string) string {
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return ""
	}
	if strings.Contains(uri, "://") {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "file" || u.Host != "" && u.Host != "localhost" {
			return ""
		}
		uri = u.Path
	}
	if !filepath.IsAbs(uri) {
		return ""
	}
	return filepath.Clean(uri)
}

// Uncovered lists the paths of want that no path of have covers (is it,
// or a directory above it), as Landlock grants a path with all below
// it. Of the paths it lists, one under another is left out: naming the
// upper one says what is new. Sorted.
func Uncovered(have, want []string) []string {
	var out []string
	for _, p := range want {
		if !slices.ContainsFunc(have, func(root string) bool { return pathUnder(p, root) }) {
			out = append(out, p)
		}
	}
	var top []string
	for _, p := range out {
		if !slices.ContainsFunc(out, func(q string) bool { return q != p && pathUnder(p, q) }) {
			top = append(top, p)
		}
	}
	slices.Sort(top)
	return slices.Compact(top)
}

// SharedCheckpointDir is the local directory of the cluster's checkpoint
// store as a task finds it: STORE of its own checkpoint location
// STORE/NAMESPACE/JOB (ARK_CHECKPOINT_URI, ckptpath.JobURI); "" when that
// is not local. The servers pass LocalPath of the store they configure,
// the same directory.
func SharedCheckpointDir(jobURI string) string {
	p := LocalPath(jobURI)
	if p == "" {
		return ""
	}
	return filepath.Dir(filepath.Dir(p))
}

// pathUnder reports whether clean absolute path p is root or lies below it.
func pathUnder(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}
