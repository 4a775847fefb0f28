package placement

import (
	"sort"
	"strings"
)

// Cluster is a set of nodes indexed for fast selection: nodes whose free
// state is identical (model, free CPU and memory, multiset of free GPU
// milli) are checked and scored once, as one class. Node i's rank in ties
// is i: callers order Nodes as they want ties broken.
type Cluster struct {
	Nodes   []*NodeState
	classes []*nodeClass
	byKey   map[classKey]int
	classOf []int
	// fabricOf is each node's fabric as an index into fabrics (sorted).
	fabricOf []int32
	fabrics  []string
}

type classKey struct {
	stateKey
	down   bool
	layout string // NVLink domain and NUMA side per GPU, when known
	solo   int32  // node index + 1 for nodes that are never grouped
}

type nodeClass struct {
	key     classKey
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
}

type cachedScore struct {
	valid   bool
	key     taskKey
	version uint64
	rep     int
	reason  Reason
	score   float64
	gpus    []int
}

// Versioned is a policy whose scores of a node state change only when its
// version does; Cluster caches their scores per node class.
type Versioned interface{ Version() uint64 }

func taskKeyOf(t Task) taskKey {
	k := taskKey{cpu: t.CPUMilli, mem: t.Memory, milli: t.GPUMilli, gpuMem: t.GPUMemory, gpus: t.GPUs}
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
// between nodes in identical states), so Cluster does not group them.
type PerNode interface{ PerNode() }

// NewCluster indexes the nodes (they are used in place, not copied).
func NewCluster(nodes []*NodeState) *Cluster {
	c := &Cluster{Nodes: nodes, byKey: map[classKey]int{}, classOf: make([]int, len(nodes)), fabricOf: make([]int32, len(nodes))}
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
		c.insert(i)
	}
	return c
}

func (c *Cluster) keyOf(i int) classKey {
	n := c.Nodes[i]
	sk, ok := keyOf(n)
	k := classKey{stateKey: sk, down: n.NotReady}
	if !ok {
		k.solo = int32(i + 1)
		return k
	}
	if n.NVLinkGroup != nil || n.NUMA != nil {
		// Which GPU is free matters within a layout: key by index.
		b := make([]byte, 0, 4*len(n.GPUFree))
		for g, f := range n.GPUFree {
			k.g[g] = int16(f)
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
	return k
}

func (c *Cluster) insert(i int) {
	k := c.keyOf(i)
	ci, ok := c.byKey[k]
	if !ok {
		ci = len(c.classes)
		c.classes = append(c.classes, &nodeClass{key: k})
		c.byKey[k] = ci
	}
	cl := c.classes[ci]
	at := sort.SearchInts(cl.members, i)
	cl.members = append(cl.members, 0)
	copy(cl.members[at+1:], cl.members[at:])
	cl.members[at] = i
	c.classOf[i] = ci
}

func (c *Cluster) remove(i int) {
	ci := c.classOf[i]
	cl := c.classes[ci]
	at := sort.SearchInts(cl.members, i)
	cl.members = append(cl.members[:at], cl.members[at+1:]...)
	if len(cl.members) > 0 {
		return
	}
	// Swap-delete the empty class; fix the moved class's index.
	last := len(c.classes) - 1
	delete(c.byKey, cl.key)
	if ci != last {
		moved := c.classes[last]
		c.classes[ci] = moved
		c.byKey[moved.key] = ci
		for _, m := range moved.members {
			c.classOf[m] = ci
		}
	}
	c.classes = c.classes[:last]
}

// Classes is the number of distinct node states.
func (c *Cluster) Classes() int { return len(c.classes) }

// Select is Select over the cluster: the best feasible node for t (lowest
// index among equal scores) and its GPUs, or -1.
func (c *Cluster) Select(t Task, p Policy, counts *ReasonCounts) (int, []int) {
	if _, ok := p.(PerNode); ok {
		return Select(c.Nodes, t, p, counts)
	}
	if _, ok := p.(Normalizer); ok {
		return Select(c.Nodes, t, p, counts)
	}
	ver, cached := p.(Versioned)
	var tk taskKey
	var v uint64
	if cached {
		tk, v = taskKeyOf(t), ver.Version()
	}
	best, bestScore := -1, 0.0
	var bestGPUs []int
	for _, cl := range c.classes {
		rep := cl.members[0]
		var e cachedScore
		hit := false
		if cached {
			e, hit = cl.cached(tk, v, rep)
		}
		if !hit {
			n := c.Nodes[rep]
			e = cachedScore{valid: true, key: tk, version: v, rep: rep, reason: n.Check(t)}
			if e.reason == ReasonNone {
				e.score, e.gpus = p.Score(n, t)
			}
			if cached {
				cl.store(e)
			}
		}
		if e.reason != ReasonNone {
			if counts != nil {
				counts[e.reason] += len(cl.members)
			}
			continue
		}
		if best < 0 || e.score > bestScore || (e.score == bestScore && rep < best) {
			best, bestScore, bestGPUs = rep, e.score, e.gpus
		}
	}
	return best, append([]int(nil), bestGPUs...)
}

// Place applies a task to node i and re-indexes it.
func (c *Cluster) Place(i int, t Task, gpus []int) {
	c.remove(i)
	c.Nodes[i].Place(t, gpus)
	c.insert(i)
}

// Release undoes Place.
func (c *Cluster) Release(i int, t Task, gpus []int) {
	c.remove(i)
	c.Nodes[i].Release(t, gpus)
	c.insert(i)
}
