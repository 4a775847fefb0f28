package placement

import "sort"

// Gang is a job's replicas as one placement request: all or nothing.
type Gang struct {
	Replicas int
	Task     Task // one replica
	// SameNode puts every replica on one node.
	SameNode bool
	// NVLink, when required, keeps a replica's GPUs in one NVLink domain
	// (PlaceGang sets Task.NVLink from it, so checkNVLink applies).
	NVLinkRequired bool
	// OneFabric, when set (topology.rdma: required), keeps a gang that
	// spans nodes inside one fabric; it waits rather than cross fabrics.
	OneFabric bool
	// Spread puts replicas on distinct nodes when it can (inference: a node
	// failure takes out at most one replica), packing otherwise.
	Spread bool
}

// Slot is where one replica goes.
type Slot struct {
	Node int // index in NodeIndex.Nodes
	GPUs []int
}

// PlaceGang plans every replica of g or none, and applies the plan to the
// cluster when it succeeds. Training gangs prefer one node (one NVLink
// domain when the node has several), then the fewest nodes, then one
// fabric; inference replicas spread across nodes. counts gets the reasons
// nodes rejected one replica when the gang does not fit.
func (c *NodeIndex) PlaceGang(g Gang, p Policy, counts *RuleCounts) ([]Slot, bool) {
	if g.Replicas <= 0 {
		return nil, true
	}
	g = g.withRules()
	var slots []Slot
	switch {
	case g.Replicas == 1:
		i, gpus := c.Select(g.Task, p, nil)
		if i >= 0 {
			slots = []Slot{{i, gpus}}
		}
	case g.SameNode:
		slots = c.planOneNode(g, p)
	case g.Spread:
		slots = c.planSpread(g, p)
	default:
		slots = c.planOneNode(g, p)
		if slots == nil {
			slots = c.planFewestNodes(g)
		}
	}
	if slots == nil {
		if counts != nil {
			for _, n := range c.Nodes {
				if r := n.Check(g.Task); r != RuleNone {
					counts[r]++
				}
			}
		}
		return nil, false
	}
	for _, s := range slots {
		c.Take(s.Node, g.Task, s.GPUs)
	}
	return slots, true
}

// withRules is g with its topology rules on its task (what the checkers
// read).
func (g Gang) withRules() Gang {
	if g.NVLinkRequired {
		g.Task.NVLink = true
	}
	return g
}

// combined is the whole gang as one task on one node. NVLink stays a
// rule per replica (planOneNode keeps each replica in one domain).
func combined(g Gang) Task {
	t := g.Task
	t.NVLink = false
	t.CPUMilli *= int64(g.Replicas)
	t.Memory *= int64(g.Replicas)
	if t.Shared() {
		return Task{} // shared replicas are not combined
	}
	t.GPUs *= g.Replicas
	return t
}

// planOneNode places the gang on one node, preferring a node where it fits
// in one NVLink domain, scored by the policy among those.
func (c *NodeIndex) planOneNode(g Gang, p Policy) []Slot {
	if g.Task.Shared() || g.Task.GPUs == 0 {
		return c.planOneNodeEach(g, p)
	}
	t := combined(g)
	best, bestScore, bestDomain := -1, 0.0, false
	var bestGPUs []int
	for cl := range c.classesFor(t) {
		rep := cl.members[0]
		n := c.Nodes[rep]
		if n.Check(t) != RuleNone {
			continue
		}
		gpus, oneDomain := nvlinkGPUs(n, t.GPUs)
		if gpus == nil {
			continue
		}
		// The whole gang in one domain keeps every replica in one; else
		// each replica needs a domain of its own when NVLink is required.
		if g.Task.NVLink && !oneDomain && capacity(n, g.Task) < g.Replicas {
			continue
		}
		s, _ := p.Score(n, t)
		better := best < 0 || (oneDomain && !bestDomain) ||
			(oneDomain == bestDomain && (s > bestScore || (s == bestScore && rep < best)))
		if better {
			best, bestScore, bestDomain, bestGPUs = rep, s, oneDomain, gpus
		}
	}
	if best < 0 {
		return nil
	}
	slots := make([]Slot, g.Replicas)
	if g.Task.NVLink && !bestDomain {
		n := c.Nodes[best].Clone()
		for r := range slots {
			gpus := perReplicaGPUs(n, g.Task)
			if gpus == nil {
				return nil
			}
			n.Take(g.Task, gpus)
			slots[r] = Slot{best, gpus}
		}
		return slots
	}
	k := g.Task.GPUs
	for r := range slots {
		slots[r] = Slot{best, bestGPUs[r*k : (r+1)*k]}
	}
	return slots
}

// planOneNodeEach puts every replica of a shared or CPU-only gang on the
// best node (by the policy's score of one replica) that holds them all.
func (c *NodeIndex) planOneNodeEach(g Gang, p Policy) []Slot {
	best, bestScore := -1, 0.0
	for cl := range c.classesFor(g.Task) {
		rep := cl.members[0]
		n := c.Nodes[rep]
		if capacity(n, g.Task) < g.Replicas {
			continue
		}
		s, _ := p.Score(n, g.Task)
		if best < 0 || s > bestScore || (s == bestScore && rep < best) {
			best, bestScore = rep, s
		}
	}
	if best < 0 {
		return nil
	}
	n := c.Nodes[best].Clone()
	slots := make([]Slot, g.Replicas)
	for r := range slots {
		gpus := perReplicaGPUs(n, g.Task)
		if gpus == nil && g.Task.GPUs > 0 {
			return nil
		}
		n.Take(g.Task, gpus)
		slots[r] = Slot{best, gpus}
	}
	return slots
}

// nvlinkGPUs picks k fully free GPUs, all in one NVLink domain (and one
// NUMA side) when some domain has room, else the lowest free ones.
func nvlinkGPUs(n *NodeState, k int) ([]int, bool) {
	if n.NVLinkGroup == nil && n.NUMA == nil {
		g := lowestFree(n, k, MilliPerGPU)
		return g, g != nil
	}
	// Group free GPUs by (domain, NUMA) and then by domain.
	try := func(key func(i int) int) []int {
		groups := map[int][]int{}
		var order []int
		for i, f := range n.GPUFree {
			if f != MilliPerGPU {
				continue
			}
			kk := key(i)
			if _, ok := groups[kk]; !ok {
				order = append(order, kk)
			}
			groups[kk] = append(groups[kk], i)
		}
		// The tightest group that holds k GPUs keeps larger ones whole.
		best := -1
		for _, kk := range order {
			if len(groups[kk]) >= k && (best < 0 || len(groups[kk]) < len(groups[best])) {
				best = kk
			}
		}
		if best < 0 {
			return nil
		}
		return groups[best][:k]
	}
	dom := func(i int) int {
		if n.NVLinkGroup == nil {
			return 0
		}
		return n.NVLinkGroup[i]
	}
	numa := func(i int) int {
		if n.NUMA == nil {
			return 0
		}
		return n.NUMA[i]
	}
	if g := try(func(i int) int { return dom(i)*1024 + numa(i) }); g != nil {
		return g, true
	}
	if g := try(dom); g != nil {
		return g, true
	}
	g := lowestFree(n, k, MilliPerGPU)
	return g, false
}

func maxDomain(n *NodeState) int {
	if n.NVLinkGroup == nil {
		return len(n.GPUFree)
	}
	size := map[int]int{}
	m := 0
	for _, d := range n.NVLinkGroup {
		size[d]++
		m = max(m, size[d])
	}
	return m
}

// capacity is how many replicas of t fit on n as it is now.
func capacity(n *NodeState, t Task) int {
	if n.Check(t) != RuleNone {
		return 0
	}
	c := 1 << 30
	if t.CPUMilli > 0 {
		c = min(c, int(n.CPUFree/t.CPUMilli))
	}
	if t.Memory > 0 {
		c = min(c, int(n.MemFree/t.Memory))
	}
	switch {
	case t.Shared():
		s := 0
		for _, f := range n.GPUFree {
			s += int(f / t.GPUMilli)
		}
		c = min(c, s)
	case t.NVLink && t.GPUs > 1 && t.GPUs <= maxDomain(n):
		c = min(c, domainReplicas(n, t.GPUs))
	case t.GPUs > 0:
		c = min(c, n.FullyFree()/t.GPUs)
	}
	return c
}

// planFewestNodes spreads a training gang over the fewest nodes: within
// each fabric, nodes that hold the most replicas first; the fabric that
// needs the fewest nodes wins (then the least capacity left over, then the
// first fabric by name); across fabrics only when no fabric can hold it
// and the gang does not require one (OneFabric).
// One pass over the node classes in order of capacity.
func (c *NodeIndex) planFewestNodes(g Gang) []Slot {
	type cand struct {
		cl  *nodeClass
		cap int
	}
	var cs []cand
	for cl := range c.classesFor(g.Task) {
		if cp := min(capacity(c.Nodes[cl.members[0]], g.Task), g.Replicas); cp > 0 {
			cs = append(cs, cand{cl, cp})
		}
	}
	sort.Slice(cs, func(a, b int) bool {
		if cs[a].cap != cs[b].cap {
			return cs[a].cap > cs[b].cap
		}
		return cs[a].cl.members[0] < cs[b].cl.members[0]
	})
	nf := len(c.fabrics)
	need := make([]int, nf)
	used := make([]int, nf)
	waste := make([]int, nf)
	for f := range need {
		need[f] = g.Replicas
	}
	best := -1
	for _, x := range cs {
		for _, m := range x.cl.members {
			f := c.fabricOf[m]
			if need[f] <= 0 {
				continue
			}
			used[f]++
			need[f] -= x.cap
			if need[f] <= 0 {
				waste[f] = -need[f]
				if best < 0 || used[f] < used[best] || (used[f] == used[best] && (waste[f] < waste[best] || (waste[f] == waste[best] && int(f) < best))) {
					best = int(f)
				}
			}
		}
	}
	if best < 0 && g.OneFabric {
		return nil // no fabric holds it, and it may not cross one
	}
	type pick struct{ node, cap int }
	var chosen []pick
	left := g.Replicas
	for _, x := range cs {
		for _, m := range x.cl.members {
			if left <= 0 {
				break
			}
			if best >= 0 && int(c.fabricOf[m]) != best {
				continue
			}
			chosen = append(chosen, pick{m, x.cap})
			left -= x.cap
		}
	}
	if left > 0 {
		return nil
	}
	var slots []Slot
	left = g.Replicas
	for _, x := range chosen {
		n := c.Nodes[x.node].Clone()
		for r := 0; r < min(x.cap, left); r++ {
			gpus := perReplicaGPUs(n, g.Task)
			if gpus == nil && g.Task.GPUs > 0 {
				return nil
			}
			n.Take(g.Task, gpus)
			slots = append(slots, Slot{x.node, gpus})
		}
		left -= min(x.cap, left)
	}
	return slots
}

// perReplicaGPUs picks one replica's GPUs on a node: one NVLink domain
// when it can.
func perReplicaGPUs(n *NodeState, t Task) []int {
	if t.GPUs == 0 {
		return nil
	}
	if t.Shared() {
		if g := tightestGPU(n, t.GPUMilli); g >= 0 {
			return []int{g}
		}
		return nil
	}
	g, _ := nvlinkGPUs(n, t.GPUs)
	return g
}

// planSpread places replicas one by one on distinct nodes while it can,
// then wherever the policy prefers.
func (c *NodeIndex) planSpread(g Gang, p Policy) []Slot {
	used := map[int]bool{}
	var slots []Slot
	var undo []Slot
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			c.Release(undo[i].Node, g.Task, undo[i].GPUs)
		}
	}()
	for r := 0; r < g.Replicas; r++ {
		i, gpus := c.selectExcept(g.Task, p, used)
		if i < 0 {
			i, gpus = c.Select(g.Task, p, nil)
		}
		if i < 0 {
			return nil
		}
		used[i] = true
		c.Take(i, g.Task, gpus)
		undo = append(undo, Slot{i, gpus})
		slots = append(slots, Slot{i, gpus})
	}
	return slots
}

// selectExcept is Select over the nodes not in skip (the lowest index of
// a class that is not skipped stands for it).
func (c *NodeIndex) selectExcept(t Task, p Policy, skip map[int]bool) (int, []int) {
	best, bestScore := -1, 0.0
	var bestGPUs []int
	for cl := range c.classesFor(t) {
		rep := -1
		for _, m := range cl.members {
			if !skip[m] {
				rep = m
				break
			}
		}
		if rep < 0 {
			continue
		}
		n := c.Nodes[rep]
		if n.Check(t) != RuleNone {
			continue
		}
		s, gp := p.Score(n, t)
		if best < 0 || s > bestScore || (s == bestScore && rep < best) {
			best, bestScore, bestGPUs = rep, s, gp
		}
	}
	return best, bestGPUs
}
