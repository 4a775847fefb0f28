package spec

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// A builtin task runs confined (worker/driver: Landlock): it may read the
// local paths its spec named when it started, and no other, for as long
// as it runs. Which paths those are is decided here, once, for the two
// that depend on it: the driver, which opens them to the task, and the
// scheduler, which applies a change of a service's adapters in place only
// while every local path of the new spec is one its running replicas may
// already read (scheduler/sched ReplicaChanged); otherwise the replicas
// are rolled, and the new ones start with the new paths.

// ReadRoots lists the local paths a builtin task b may read: each local
// checkpoint of its base (every item), data and adapters, and the
// directory two levels above it (a checkpoint STORE/JOB/STEP is read
// through its store, which the task's reader opens at STORE; for a
// STORE/JOB it is the directory above the store). A location that is not
// local (s3://, a relative path, a model:// reference, which the servers
// resolve before they store a spec) gives none: a task reads it through
// the network or not at all. Sorted, without duplicates.
func ReadRoots(b *BuiltinTask) []string {
	if b == nil {
		return nil
	}
	uris := append(strings.Split(b.Base, ","), b.Data)
	for _, a := range b.Adapters {
		uris = append(uris, a.URI)
	}
	var out []string
	for _, uri := range uris {
		if p := LocalPath(uri); p != "" {
			out = append(out, p, filepath.Dir(filepath.Dir(p)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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

// pathUnder reports whether clean absolute path p is root or lies below it.
func pathUnder(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}
