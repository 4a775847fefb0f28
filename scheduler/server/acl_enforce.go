package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// What a token of the ACL state may submit, checked by the leader before
// the job is committed (followers forward submissions). Every refusal is a
// 403 that names the rule and the policies in force, so that a tenant
// knows what to ask an operator for.

// forbid is a 403 wrapping ErrForbidden.
func forbid(format string, args ...any) error {
	return &httpError{http.StatusForbidden, fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))}
}

// authorizeSpec checks a parsed spec against the principal submitting it
// as a new job (replacing nil) or as a new version of a job's spec
// (replacing: its current spec): an update needs the update capability,
// and counts against the limits only what it adds.
func (s *Server) authorizeSpec(p principal, js *spec.Job, replacing *spec.Job) error {
	verb, to, capability := "submit", "submit to", api.CapSubmit
	if replacing != nil {
		verb, to, capability = "update jobs", "update jobs in", api.CapUpdate
	}
	if p.grant == nil || p.role != roleNamespace {
		if !p.canNamespace(js.Namespace) {
			return forbid("this token submits to namespace %q, not %q", p.namespace, js.Namespace)
		}
		return nil
	}
	n := p.grant.ns[js.Namespace]
	if n == nil || !n.caps[capability] {
		return forbid("token %s may not %s namespace %q (its policies grant %s in: %s)", p.grant.accessor, to, js.Namespace, capability, listOrNone(p.grant.namespacesWith(capability)))
	}
	pols := strings.Join(n.policies, ", ")
	if !slices.Contains(n.queues, js.Queue) {
		return forbid("namespace %q may not use queue %q (policy %s allows: %s)", js.Namespace, js.Queue, pols, strings.Join(n.queues, ", "))
	}
	if js.Priority > n.maxPriority {
		return forbid("namespace %q may not %s at priority %d (policy %s allows at most %d)", js.Namespace, verb, js.Priority, pols, n.maxPriority)
	}
	for _, f := range builtinReads(js.Task.Builtin) {
		if err := n.checkRead(js.Namespace, f); err != nil {
			return err
		}
	}
	lim := n.limits
	if lim == (api.ACLLimits{}) {
		return nil
	}
	u := s.store.Snapshot().NamespaceUsage(js.Namespace)
	adds := js.GPUMilliTotal()
	if replacing != nil {
		adds -= replacing.GPUMilliTotal()
	}
	switch {
	case replacing == nil && lim.Jobs > 0 && u.Pending+u.Running >= lim.Jobs:
		return forbid("namespace %q has %d unfinished jobs (policy %s allows %d): wait for some to end or cancel some", js.Namespace, u.Pending+u.Running, pols, lim.Jobs)
	case replacing == nil && lim.PendingJobs > 0 && u.Pending >= lim.PendingJobs:
		return forbid("namespace %q has %d pending jobs (policy %s allows %d)", js.Namespace, u.Pending, pols, lim.PendingJobs)
	case lim.GPUs > 0 && adds > 0 && u.GPUMilli+adds > int64(lim.GPUs)*spec.MilliPerGPU:
		return forbid("namespace %q would ask for %s GPUs with this job, more than the %d its policy %s allows", js.Namespace, milliGPUs(u.GPUMilli+adds), lim.GPUs, pols)
	}
	return nil
}

// storageRead is one location a builtin task reads, and the spec field
// that names it.
type storageRead struct{ field, loc string }

// builtinReads lists every location a builtin task reads: its base (an
// eval job's base lists candidates, BASE,ADAPTER, each read on its own),
// its data and the adapters it serves. A field missing here is a way to
// read another tenant's checkpoints.
func builtinReads(b *spec.BuiltinTask) []storageRead {
	if b == nil {
		return nil
	}
	var out []storageRead
	for _, loc := range strings.Split(b.Base, ",") {
		if loc = strings.TrimSpace(loc); loc != "" {
			out = append(out, storageRead{"task.builtin.base", loc})
		}
	}
	if b.Data != "" {
		out = append(out, storageRead{"task.builtin.data", b.Data})
	}
	for i, a := range b.Adapters {
		out = append(out, storageRead{fmt.Sprintf("task.builtin.adapters[%d].uri", i), a.URI})
	}
	return out
}

// checkRead is a 403 naming f's field and the policies when namespace ns
// may not read f's location (n is its grant), or nil.
func (n *nsGrant) checkRead(ns string, f storageRead) error {
	if err := n.mayRead(f.loc); err != nil {
		return forbid("%s: namespace %q %v (policy %s allows reading: %s)", f.field, ns, err, strings.Join(n.policies, ", "), listOrNone(n.readPrefixes))
	}
	return nil
}

// mayRead reports why a storage location may not be read, or nil.
func (n *nsGrant) mayRead(loc string) error {
	key, err := storageKey(loc)
	if err != nil {
		return fmt.Errorf("may not read %q: it %v", loc, err)
	}
	for _, pre := range n.readPrefixes {
		if underPrefix(key, pre) {
			return nil
		}
	}
	return fmt.Errorf("may not read %q", loc)
}

func (g *aclGrant) namespacesWith(capability string) []string {
	var out []string
	for name, n := range g.ns {
		if n.caps[capability] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func milliGPUs(m int64) string {
	if m%spec.MilliPerGPU == 0 {
		return fmt.Sprint(m / spec.MilliPerGPU)
	}
	return fmt.Sprintf("%.3g", float64(m)/spec.MilliPerGPU)
}

// jobAccess checks a principal's capability on a job: a job it may not
// read is not found (its ID is not revealed); one it may read but not act
// on this way is a 403 naming the capability.
func (p principal) jobAccess(j *api.Job, id, capability string) error {
	if j == nil || !p.canNamespace(j.Namespace) {
		return hiddenJob(id)
	}
	if !p.can(j.Namespace, capability) {
		return forbid("this token lacks capability %q on jobs of namespace %q (its policies do not grant it there)", capability, j.Namespace)
	}
	return nil
}
