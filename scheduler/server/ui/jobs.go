package ui

import (
	"net/url"
	"sort"

	"github.com/ark-sched/ark/scheduler/api"
)

// The jobs page: every visible job, filtered by status, namespace and
// queue (the query string of /ui/jobs, passed on to its fragment).

type jobsPage struct {
	Filter     jobFilter
	Jobs       []jobRow
	Statuses   []string
	Namespaces []string
	Queues     []string
	Total      int
}

type jobFilter struct{ Status, Namespace, Queue string }

type jobRow struct {
	*api.Job
	GPUs string // GPUs held now, shares counted as fractions
}

func filterOf(q url.Values) jobFilter {
	return jobFilter{Status: q.Get("status"), Namespace: q.Get("namespace"), Queue: q.Get("queue")}
}

func (f jobFilter) match(j *api.Job) bool {
	return (f.Status == "" || j.Status == f.Status) &&
		(f.Namespace == "" || j.Namespace == f.Namespace) &&
		(f.Queue == "" || j.Queue == f.Queue)
}

func buildJobs(v *View, f jobFilter) jobsPage {
	p := jobsPage{Filter: f, Total: len(v.Jobs),
		Statuses: []string{api.JobPending, api.JobRunning, api.JobSucceeded, api.JobFailed, api.JobCancelled}}
	ns, qs := map[string]bool{}, map[string]bool{}
	for _, j := range v.Jobs {
		ns[j.Namespace], qs[j.Queue] = true, true
		if f.match(j) {
			p.Jobs = append(p.Jobs, jobRow{Job: j, GPUs: heldGPUs(j)})
		}
	}
	// Newest first, as `ark job list` shows them.
	sort.Slice(p.Jobs, func(i, k int) bool { return p.Jobs[i].CreateIndex > p.Jobs[k].CreateIndex })
	p.Namespaces, p.Queues = sortedKeys(ns), sortedKeys(qs)
	return p
}

func heldGPUs(j *api.Job) string {
	var m int64
	for _, a := range j.Allocations {
		if a.Terminal() {
			continue
		}
		if a.GPUMilli > 0 {
			m += a.GPUMilli
		} else {
			m += int64(len(a.GPUs)) * milliPerGPU
		}
	}
	if m == 0 {
		return "0"
	}
	return fraction(m)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
