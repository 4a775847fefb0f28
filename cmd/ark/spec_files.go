package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/ark-sched/ark/scheduler/spec"
)

// missingLocalFiles lists a builtin task's data and base paths that do not
// exist on this machine ("task.builtin.data: /x/d.txt does not exist").
// URIs other than file:// are left to the nodes.
func missingLocalFiles(job *spec.Job) []string {
	b := job.Task.Builtin
	if b == nil {
		return nil
	}
	var out []string
	check := func(field, p string) {
		if rest, ok := strings.CutPrefix(p, "file://"); ok {
			p = rest
		} else if strings.Contains(p, "://") {
			return
		}
		if _, err := os.Stat(p); err != nil {
			out = append(out, fmt.Sprintf("%s: %s does not exist", field, p))
		}
	}
	if b.Data != "" {
		check("task.builtin.data", b.Data)
	}
	if b.Base != "" {
		parts := strings.Split(b.Base, ",")
		for i, p := range parts {
			field := "task.builtin.base"
			if len(parts) > 1 {
				field = fmt.Sprintf("task.builtin.base[%d]", i)
			}
			check(field, strings.TrimSpace(p))
		}
	}
	return out
}

// checkLocalFiles reports a builtin task's missing files. When every
// server is on this machine (ark dev, a one-machine cluster) the nodes
// read the same disk, so a missing file is a spec error (exit 2); against
// a remote cluster the nodes may well have it, so it is only a warning.
func checkLocalFiles(g *globals, job *spec.Job, warn func(string)) error {
	missing := missingLocalFiles(job)
	if len(missing) == 0 {
		return nil
	}
	if allLoopback(g.addr) {
		return usagef("the spec names files this machine, where the cluster runs, lacks:\n  %s", strings.Join(missing, "\n  "))
	}
	for _, m := range missing {
		warn(fmt.Sprintf("warning: %s here; the nodes must have it", m))
	}
	return nil
}

// allLoopback reports whether every address in addrs (comma-separated)
// is on this machine.
func allLoopback(addrs string) bool {
	for _, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return false
		}
		host := u.Hostname()
		if host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}
