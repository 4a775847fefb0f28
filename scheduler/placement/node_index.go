package placement

import (
	"iter"
	"sort"
	"strings"
)

// NodeIndex is a set of nodes indexed for fast selection, in two levels.
// Nodes whose GPUs are in the same state (model, GPU memory, readiness,
// the multiset of free GPU milli, or the free milli per GPU index when
// the node says which GPUs share an NVLink domain or NUMA side) form a
// group: the checkers that read GPUs pass or fail for all of them at once,
// so a task skips a group of full nodes in one check however their free
// CPU and memory differ. Within a group, nodes whose free CPU and memory
// are equal too form a class, checked and scored once. Node i's rank in
// ties is i: callers order Nodes as they want ties broken.
type NodeIndex struct {
	Nodes   []*NodeState
	groups  []*nodeGroup
	byGroup map[groupKey]*nodeGroup
	classOf []*nodeClass
	classes int
	// kindOf is each node's fixed part of its group key (model, GPU memory
	// and count, layout) as an index into kinds.
	kindOf []int32
	kinds  map[nodeKind]int32
	// fabricOf is each node's fabric as an index into fabrics (sorted).
	fabricOf []int32
	fabrics  []string
	// ungrouped makes every node a group of its own: the plain per-node
	// scan that tests compare the grouped cluster with.
	ungrouped bool
}

// groupKey is what the checkers other than CPU's and memory's read of a
// node: its kind, readiness and free GPU milli.
type groupKey struct {
	kind int32
	down bool
	g    [8]int16 // sorted, or per index when the kind has a layout
	solo int32    // node index + 1 for nodes that are never grouped
}

// nodeKind is what Take and Release never change about a node.
type nodeKind struct {
	model  string
	gpuMem int64
	gpus   int
	layout string // NVLink domain and NUMA side per GPU, when known
	// excluded is why a job's view left GPUs out (the rule a node left
	// without GPUs fails).
	excluded Rule
}

type cpuMem struct{ cpu, mem int64 }

// nodeGroup is the classes of one GPU state. Its state never changes (a
// node that changes moves to another group), so the reason it rejects a
// task for is cached per task shape.
type nodeGroup struct {
	key     groupKey
	at      int // index in NodeIndex.groups
	classes []*nodeClass
	byState map[cpuMem]*nodeClass // once it has more than a few classes
	nodes   int                   // members of all its classes
	reasons [4]groupReason
	next    int
}

// groupReason is a cached reason for a task shape.
type groupReason struct {
	valid  bool
	key    taskKey // CPU and memory zero
	reason Rule
}

type nodeClass struct {
	key     cpuMem
	group   *nodeGroup
	at      int   // index in group.classes
	members []int // node indexes, ascending
	// scores caches the rep's check and score for the last few task
	// shapes; a class's state never changes, so an entry holds while the
	// policy's version and the class's first member do.
	scores [4]cachedScore
	next   int
}

func (cl *nodeClass) cached(k taskKey, version uint64, rep int) (cachedScore, bool) {
	for i := range cl.scores {
		e := &cl.scores[i]
		if e.valid && e.version == version && e.rep == rep && e.key == k {
			return *e, true
		}
	}
	return cachedScore{}, false
}

func (cl *nodeClass) store(e cachedScore) {
	cl.scores[cl.next] = e
	cl.next = (cl.next + 1) % len(cl.scores)
}

type taskKey struct {
	cpu, mem, milli, gpuMem int64
	gpus                    int
	models                  string
	nvlink                  bool
}

type cachedScore struct {
	valid   bool
	key     taskKey
	version uint64
	rep     int
	reason  Rule
	score   float64
	gpus    []int
}

// Versioned is a policy whose scores of a node state change only when its
// version does; NodeIndex caches their scores per node class.
type Versioned interface{ Version() uint64 }

func taskKeyOf(t Task) taskKey {
	k := taskKey{cpu: t.CPUMilli, mem: t.Memory, milli: t.GPUMilli, gpuMem: t.GPUMemory, gpus: t.GPUs, nvlink: t.NVLink}
	switch len(t.Models) {
	case 0:
	case 1:
		k.models = t.Models[0]
	default:
		k.models = strings.Join(t.Models, "|")
	}
	return k
}

// PerNode marks policies that must see every node (their scores differ
// between nodes in identical states), so NodeIndex does not group them.
type PerNode interface{ PerNode() }

// NewNodeIndex indexes the nodes (they are used in place, not copied).
func NewNodeIndex(nodes []*NodeState) *NodeIndex { return newNodeIndex(nodes, false) }

func newNodeIndex(nodes []*NodeState, ungrouped bool) *NodeIndex {
	c := &NodeIndex{ungrouped: ungrouped, Nodes: nodes, byGroup: map[groupKey]*nodeGroup{}, classOf: make([]*nodeClass, len(nodes)),
		kindOf: make([]int32, len(nodes)), kinds: map[nodeKind]int32{}, fabricOf: make([]int32, len(nodes))}
	seen := map[string]bool{}
	for _, n := range nodes {
		if !seen[n.Fabric] {
			seen[n.Fabric] = true
			c.fabrics = append(c.fabrics, n.Fabric)
		}
	}
	sort.Strings(c.fabrics)
	for i, n := range nodes {
		c.fabricOf[i] = int32(sort.SearchStrings(c.fabrics, n.Fabric))
	}
	for i := range nodes {
		c.kindOf[i] = c.kindID(i)
		c.insert(i)
	}
	return c
}

// kindID is node i's kind as an index into c.kinds, added when new.
func (c *NodeIndex) kindID(i int) int32 {
	n := c.Nodes[i]
	k := nodeKind{model: n.Model, gpuMem: n.GPUMemory, gpus: len(n.GPUFree), excluded: n.Excluded}
	if n.NVLinkGroup != nil || n.NUMA != nil {
		b := make([]byte, 0, 4*len(n.GPUFree))
		for g := range n.GPUFree {
			d, m := 0, 0
			if n.NVLinkGroup != nil {
				d = n.NVLinkGroup[g]
			}
			if n.NUMA != nil {
				m = n.NUMA[g]
			}
			b = append(b, byte(d), byte(d>>8), byte(m), byte(m>>8))
		}
		k.layout = string(b)
	}
	id, ok := c.kinds[k]
	if !ok {
		id = int32(len(c.kinds))
		c.kinds[k] = id
	}
	return id
}

func (c *NodeIndex) groupKeyOf(i int) groupKey {
	n := c.Nodes[i]
	k := groupKey{kind: c.kindOf[i], down: n.NotReady}
	if c.ungrouped || len(n.GPUFree) > len(k.g) {
		k.solo = int32(i + 1)
		return k
	}
	for g, f := range n.GPUFree {
		k.g[g] = int16(f)
	}
	if n.NVLinkGroup != nil || n.NUMA != nil {
		return k // which GPU is free matters within a layout: by index
	}
	g := k.g[:len(n.GPUFree)]
	for i := 1; i < len(g); i++ { // insertion sort, descending
		for j := i; j > 0 && g[j] > g[j-1]; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
	return k
}

func (c *NodeIndex) insert(i int) {
	gk := c.groupKeyOf(i)
	g, ok := c.byGroup[gk]
	if !ok {
		g = &nodeGroup{key: gk, at: len(c.groups)}
		c.groups = append(c.groups, g)
		c.byGroup[gk] = g
	}
	k := cpuMem{c.Nodes[i].CPUFree, c.Nodes[i].MemFree}
	cl := g.class(k)
	if cl == nil {
		cl = &nodeClass{key: k, group: g, at: len(g.classes)}
		g.classes = append(g.classes, cl)
		if g.byState != nil {
			g.byState[k] = cl
		} else if len(g.classes) > smallGroup {
			g.byState = make(map[cpuMem]*nodeClass, len(g.classes))
			for _, x := range g.classes {
				g.byState[x.key] = x
			}
		}
		c.classes++
	}
	at := sort.SearchInts(cl.members, i)
	cl.members = append(cl.members, 0)
	copy(cl.members[at+1:], cl.members[at:])
	cl.members[at] = i
	cl.group.nodes++
	c.classOf[i] = cl
}

func (c *NodeIndex) remove(i int) {
	cl := c.classOf[i]
	at := sort.SearchInts(cl.members, i)
	cl.members = append(cl.members[:at], cl.members[at+1:]...)
	g := cl.group
	g.nodes--
	if len(cl.members) > 0 {
		return
	}
	// Swap-delete the empty class, then the empty group.
	if g.byState != nil {
		delete(g.byState, cl.key)
	}
	c.classes--
	last := len(g.classes) - 1
	g.classes[cl.at] = g.classes[last]
	g.classes[cl.at].at = cl.at
	g.classes = g.classes[:last]
	if len(g.classes) > 0 {
		return
	}
	delete(c.byGroup, g.key)
	last = len(c.groups) - 1
	c.groups[g.at] = c.groups[last]
	c.groups[g.at].at = g.at
	c.groups = c.groups[:last]
}

// smallGroup is how many classes a group finds by a scan, not a map.
const smallGroup = 8

// class is g's class of free CPU and memory k, or nil.
func (g *nodeGroup) class(k cpuMem) *nodeClass {
	if g.byState != nil {
		return g.byState[k]
	}
	for _, cl := range g.classes {
		if cl.key == k {
			return cl
		}
	}
	return nil
}

// Classes is the number of distinct node states.
func (c *NodeIndex) Classes() int { return c.classes }

// Groups is the number of distinct GPU states.
func (c *NodeIndex) Groups() int { return len(c.groups) }

// reason is the rule every node of g rejects t for, or RuleNone
// when some node may take it. It runs the checkers with t's CPU and memory
// set to zero: every checker but CPU's and memory's reads only what the
// group key holds, so one that fails there fails for every member. A CPU
// or memory rejection (a node over-committed) is left to the classes.
func (g *nodeGroup) reason(c *NodeIndex, t Task, gk taskKey) Rule {
	for i := range g.reasons {
		if e := &g.reasons[i]; e.valid && e.key == gk {
			return e.reason
		}
	}
	t.CPUMilli, t.Memory = 0, 0
	r := c.Nodes[g.classes[0].members[0]].Check(t)
	if r == RuleCPU || r == RuleMemory {
		r = RuleNone
	}
	g.reasons[g.next] = groupReason{valid: true, key: gk, reason: r}
	g.next = (g.next + 1) % len(g.reasons)
	return r
}

// gpuTaskKey is t's key with CPU and memory zero (what group reasons read).
func gpuTaskKey(k taskKey) taskKey {
	k.cpu, k.mem = 0, 0
	return k
}

// classesFor yields the classes of the groups whose GPU state does not
// reject t outright.
func (c *NodeIndex) classesFor(t Task) iter.Seq[*nodeClass] {
	gk := gpuTaskKey(taskKeyOf(t))
	return func(yield func(*nodeClass) bool) {
		for _, g := range c.groups {
			if len(g.classes) > 1 && g.reason(c, t, gk) != RuleNone {
				continue
			}
			for _, cl := range g.classes {
				if !yield(cl) {
					return
				}
			}
		}
	}
}

// Select is Select over the cluster: the best feasible node for t (lowest
// index among equal scores) and its GPUs, or -1. It checks each group's
// GPU state once, then checks and scores each class of the groups that
// pass, once per class.
func (c *NodeIndex) Select(t Task, p Policy, counts *RuleCounts) (int, []int) {
	if _, ok := p.(PerNode); ok {
		return Select(c.Nodes, t, p, counts)
	}
	if _, ok := p.(Normalizer); ok {
		return Select(c.Nodes, t, p, counts)
	}
	ver, cached := p.(Versioned)
	tk := taskKeyOf(t)
	gk := gpuTaskKey(tk)
	var v uint64
	if cached {
		v = ver.Version()
	}
	best, bestScore := -1, 0.0
	var bestGPUs []int
	for _, g := range c.groups {
		// A group of one class is checked as the class.
		if len(g.classes) > 1 {
			if r := g.reason(c, t, gk); r != RuleNone {
				if counts != nil {
					counts[r] += g.nodes
				}
				continue
			}
		}
		for _, cl := range g.classes {
			rep := cl.members[0]
			var e cachedScore
			hit := false
			if cached {
				e, hit = cl.cached(tk, v, rep)
			}
			if !hit {
				n := c.Nodes[rep]
				e = cachedScore{valid: true, key: tk, version: v, rep: rep, reason: n.Check(t)}
				if e.reason == RuleNone {
					e.score, e.gpus = p.Score(n, t)
				}
				if cached {
					cl.store(e)
				}
			}
			if e.reason != RuleNone {
				if counts != nil {
					counts[e.reason] += len(cl.members)
				}
				continue
			}
			if best < 0 || e.score > bestScore || (e.score == bestScore && rep < best) {
				best, bestScore, bestGPUs = rep, e.score, e.gpus
			}
		}
	}
	return best, append([]int(nil), bestGPUs...)
}

// Take applies a task to node i and re-indexes it.
func (c *NodeIndex) Take(i int, t Task, gpus []int) {
	c.remove(i)
	c.Nodes[i].Take(t, gpus)
	c.insert(i)
}

// Release undoes Take.
func (c *NodeIndex) Release(i int, t Task, gpus []int) {
	c.remove(i)
	c.Nodes[i].Release(t, gpus)
	c.insert(i)
}

// SetNotReady closes node i to placement (or opens it again) and
// re-indexes it.
func (c *NodeIndex) SetNotReady(i int, notReady bool) {
	c.remove(i)
	c.Nodes[i].NotReady = notReady
	c.insert(i)
}

// forgetScores drops every class's cached scores, for an index kept for
// another pass: its policy is a new one, whose versions may repeat the
// last one's with another distribution behind them.
func (c *NodeIndex) forgetScores() {
	for _, g := range c.groups {
		for _, cl := range g.classes {
			cl.scores = [len(cl.scores)]cachedScore{}
		}
	}
}

// reset replaces node i's state with s and re-indexes it, for a node whose
// usage changed outside this index (a placement made through another
// view). s is the same node at the same position (name, fabric, order).
func (c *NodeIndex) reset(i int, s *NodeState) {
	c.remove(i)
	c.Nodes[i] = s
	c.kindOf[i] = c.kindID(i)
	c.insert(i)
}
