package placement

import (
	"maps"

	"github.com/ark-sched/ark/scheduler/api"
)

// ViewCache carries a pass's views (one NodeIndex per kind of job, see
// Place) to the next pass, which re-reads only the nodes whose state
// changed since. Building every view anew each pass cost kinds of job x
// nodes: at 10,000 nodes and the trace's few dozen share sizes, most of a
// 1-2 s pass, while one pass's placements and reports change a few hundred
// nodes.
//
// The scheduling loop keeps one (Input.Views) and hands it to each pass in
// turn; a pass with it decides exactly as one without it
// (TestPropertyViewCacheMatchesFresh), provided a node that changes comes
// as a new record, as the state's always do (a record changed in place
// would go unseen). It is not safe for concurrent passes. The zero value
// is an empty cache.
type ViewCache struct {
	// nodes are the last pass's sorted nodes, usage what its views read
	// of their allocations (with that pass's planned placements added),
	// and touched the nodes it placed on: its views hold placements the
	// next state may not (a plan rejected at commit).
	nodes   []*api.Node
	usage   map[string]*Usage
	touched map[int]bool
	views   map[viewKey]*cachedView
	// idle are the idle cluster's verdicts per kind of job: they read
	// only the node records, and hold while those do.
	idle verdicts
	pass uint64
}

type cachedView struct {
	v        *view
	lastUsed uint64 // the pass that last placed or explained through it
}

// viewIdleLimit drops a view no job used for this many passes: kinds of
// job that came and went would otherwise keep a state per node each.
const viewIdleLimit = 32

// take returns the cached views brought up to date with this pass's nodes
// and usage, or none when the node list changed (a node joined, left,
// was closed or moved to another fabric: the indexes' node positions and
// fabric lists no longer hold). A nil cache has no views.
//
// It also returns the idle verdicts to use for the pass: the last pass's
// while no node record changed.
func (vc *ViewCache) take(nodes []*api.Node, usage map[string]*Usage) (map[viewKey]*view, verdicts) {
	out := map[viewKey]*view{}
	if vc == nil {
		return out, verdicts{}
	}
	vc.pass++
	if !sameNodeList(vc.nodes, nodes) {
		vc.views, vc.idle = nil, verdicts{}
		return out, vc.idle
	}
	var changed []int
	records := false
	for i, n := range nodes {
		// A node's record is replaced, never changed in place, when the
		// state writes it: an unchanged pointer is an unchanged node.
		rec := n != vc.nodes[i]
		records = records || rec
		if rec || vc.touched[i] || !sameUsage(vc.usage[n.ID], usage[n.ID]) {
			changed = append(changed, i)
		}
	}
	if records || vc.idle == nil {
		vc.idle = verdicts{}
	}
	for k, cv := range vc.views {
		if vc.pass-cv.lastUsed > viewIdleLimit {
			delete(vc.views, k)
			continue
		}
		cv.v.used = false
		cv.v.c.forgetScores()
		cv.v.reread(changed, nodes, usage)
		out[k] = cv.v
	}
	return out, vc.idle
}

// keep records a pass's views and what they were built from, for the next
// pass.
func (vc *ViewCache) keep(nodes []*api.Node, usage map[string]*Usage, views map[viewKey]*view, touched map[int]bool) {
	if vc == nil {
		return
	}
	vc.nodes, vc.usage, vc.touched = nodes, usage, touched
	if vc.views == nil {
		vc.views = map[viewKey]*cachedView{}
	}
	for k, v := range views {
		cv := vc.views[k]
		if cv == nil {
			cv = &cachedView{v: v}
			vc.views[k] = cv
		}
		if v.used {
			cv.lastUsed = vc.pass
		}
	}
}

// sameNodeList reports whether two sorted node lists hold the same nodes
// in the same places, each in the same fabric (NodeIndex numbers the
// fabrics once, when it is built).
func sameNodeList(a, b []*api.Node) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Fabric != b[i].Fabric {
			return false
		}
	}
	return true
}

// sameUsage reports whether two usages read the same to nodeStateFor
// (nil is an empty usage): CPU, memory, and each GPU's milli and memory.
func sameUsage(a, b *Usage) bool {
	if a == nil {
		a = &Usage{}
	}
	if b == nil {
		b = &Usage{}
	}
	return a.CPUMilli == b.CPUMilli && a.MemoryBytes == b.MemoryBytes &&
		maps.Equal(a.GPUMilli, b.GPUMilli) && maps.Equal(a.GPUMemory, b.GPUMemory)
}
