package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Place is the default scheduler's pass: each pending job, in order, is
// placed all-or-nothing by the pipeline below, or left pending with the
// reason why. It is pure: the same Input gives the same Result.
//
//	checkers (reasons.go): ready, GPU model and memory, GPUs in total,
//	    free whole GPUs, free milli for a share, CPU, memory, NVLink domain
//	scorer (Ark's policy, ark.go): least growth of expected fragmentation
//	    under the shape distribution learned from live and earlier jobs
//	gang (gang.go): one node and one NVLink domain, then fewest nodes in
//	    one fabric; inference replicas spread over nodes
//
// Assignments use the same GPU indexes Fit re-checks before commit.
//
// Jobs that see the nodes alike (the same GPU model and memory filter, and
// for shares the same share) share one NodeIndex, built once and updated
// by each placement, so a pass over many jobs costs one index build per
// kind of job, not one per job.
func Place(in Input) Result { return place(in, false) }

// viewKey is what jobStates reads of a request: jobs with equal keys see
// the same node states.
type viewKey struct {
	model     string
	gpuMemory int64
	share     int64 // GPUMilli, for shares (their GPU memory folds into free milli)
	shareMem  int64 // the share's explicit GPU memory (0: its proportion)
}

func viewKeyOf(req Request) viewKey {
	k := viewKey{model: req.GPUModel, gpuMemory: req.GPUMemoryBytes}
	if req.Shared() {
		k.share, k.shareMem = req.GPUMilli, req.ShareMemory()
	}
	return k
}

// kindKey is a request and its gang, whose task the request gives
// (taskOf): jobs of one kindKey get the same explanation in a pass until
// a placement changes the usage. A struct, not formatted text: the keys
// are made for every job that stays pending, every pass.
type kindKey struct {
	req                                 Request
	replicas                            int
	sameNode, nvlink, oneFabric, spread bool
}

func kindOf(req Request, g Gang) kindKey {
	return kindKey{req, g.Replicas, g.SameNode, g.NVLinkRequired, g.OneFabric, g.Spread}
}

// searchKey is what a preemption search reads of a job besides the
// cluster: jobs alike find the same victims, or none.
type searchKey struct {
	kind       kindKey
	priority   int
	queue      string
	reclaim    bool
	need       int64
	maxRuntime spec.Duration
}

// view is the cluster as jobs of one viewKey see it.
type view struct {
	c     *NodeIndex
	index [][]int
	req   Request // one request of the key: what refresh rebuilds states for
	used  bool    // a job of this pass placed or was explained through it (ViewCache)
}

// refresh re-reads the nodes at the given indexes from usage after a
// placement changed them, so a view outlives placements made through
// other views: a placement touches a few nodes, and rebuilding the whole
// view (every node's state and index) for each later job of another kind
// made a pass cost pending jobs x nodes.
func (v *view) refresh(touched []int, nodes []*api.Node, usage map[string]*Usage) {
	for _, i := range touched {
		s, _ := nodeStateFor(i, nodes[i], usage[nodes[i].ID], v.req)
		v.c.reset(i, s)
	}
}

// reread is refresh for nodes whose record may have changed too (a view
// kept from an earlier pass, ViewCache): their GPU index maps are read
// again as well.
func (v *view) reread(changed []int, nodes []*api.Node, usage map[string]*Usage) {
	for _, i := range changed {
		s, index := nodeStateFor(i, nodes[i], usage[nodes[i].ID], v.req)
		v.index[i] = index
		v.c.reset(i, s)
	}
}

// place is Place; fresh builds every job's cluster anew (the reference
// the shared views are tested against).
func place(in Input, fresh bool) Result {
	nodes := append([]*api.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	usage := NodeUsage(in.Allocs)
	policy := NewArk()
	// The distribution starts from what runs now (one shape per replica).
	for _, a := range in.Allocs {
		if !a.Terminal() {
			policy.Observe(Task{CPUMilli: a.CPUMilli, Memory: a.MemoryBytes, GPUs: len(a.GPUs), GPUMilli: allocMilli(a)})
		}
	}
	res := Result{Unplaced: map[string]string{}}
	var cache *ViewCache
	if !fresh {
		cache = in.Views
	}
	views, idle := cache.take(nodes, usage) // idle: the idle cluster's verdicts
	touchedAll := map[int]bool{}            // every node a placement of this pass changed
	explained := map[kindKey]Explanation{}  // by request and gang, until the next placement
	pre := &preempter{in: &in, taken: map[string]bool{}}
	var held []reservation // room kept for jobs that fit nowhere (backfill)
	// Nodes freed by committed preemptions are their preemptors' alone.
	nodeIdx := nodeIndex(nodes)
	holds := preemptHolds(&in, nodeIdx)
	noVictims := map[searchKey]bool{} // preemption searches that found nothing, by kind of job
	stopping := stoppingJobs(in.Allocs)
	searches := 0
	waits := 0 // jobs explained that simply keep waiting (Input.MaxExplain)
	limit := max(in.MaxReservations, 1)
	for _, job := range preemptorsFirst(in.Pending) {
		req, err := RequestOf(job)
		if err != nil {
			res.pending(job.ID, Explain(Reason{Rule: RuleInvalid, Detail: "invalid resources: " + err.Error()}))
			continue
		}
		replicas := max(job.Spec.Replicas, 1)
		g := Gang{
			Replicas:       replicas,
			Task:           taskOf(req),
			SameNode:       req.SameNode,
			NVLinkRequired: job.Spec.Topology.NVLink == spec.PrefRequired,
			Spread:         job.Spec.Kind == spec.KindInference,
			OneFabric:      job.Spec.Topology.RDMA == spec.PrefRequired,
		}
		policy.Observe(g.Task)
		key := viewKeyOf(req)
		v := views[key]
		if v == nil || fresh {
			states, index := jobStates(nodes, usage, req)
			v = &view{c: NewNodeIndex(states), index: index, req: req}
			views[key] = v
		}
		v.used = true
		c, index := v.c, v.index
		// Behind held jobs, only work that ends before one could start
		// may use the nodes held for it: they are closed to this job.
		var blocked []reservation
		var closed []int
		clear(pre.closed)
		for _, list := range [][]reservation{holds, held} {
			for _, r := range list {
				if r.admits(job) {
					continue
				}
				blocked = append(blocked, r)
				for i := range r.Nodes {
					if r.preemptor {
						if pre.closed == nil {
							pre.closed = map[int]bool{}
						}
						pre.closed[i] = true
					}
					if !c.Nodes[i].NotReady {
						c.SetNotReady(i, true)
						closed = append(closed, i)
					}
				}
			}
		}
		need := in.QuotaNeed[job.ID]
		var slots []Slot
		ok := false
		if need == 0 {
			slots, ok = c.PlaceGang(g, policy, nil)
		}
		for _, i := range closed {
			c.SetNotReady(i, false)
		}
		if !ok {
			// The explanation reads every node: it is built only where it
			// is recorded (see Input.MaxExplain).
			base := func() Explanation {
				ek := kindOf(req, g)
				why, seen := explained[ek]
				if !seen {
					why = explainGangWith(nodes, usage, g, req, idle, c.Nodes)
					explained[ek] = why
				}
				return why
			}
			if wait := waitingOn(stopping, job.Preempting); len(wait) > 0 {
				// Its victims are stopping: preempt no more, wait for them.
				why := base()
				why.Add(Reason{Rule: RulePreempting, Detail: fmt.Sprintf("waiting for preempted job(s) %s to stop", strings.Join(wait, ", "))})
				res.pending(job.ID, why)
				continue
			}
			var quota Explanation
			if need > 0 {
				quota = Explain(Reason{Rule: RuleQuota, Detail: fmt.Sprintf("waiting for quota: queue %s is at its quota and %.3g GPU(s) of its lower-priority work must stop first", job.Queue, float64(need)/MilliPerGPU)})
			}
			// A search that found no victims finds none for a job alike
			// later in the pass (usage, evicted gangs and held nodes only
			// grow); a job that already evicted work has its own
			// exclusions and is never skipped. MaxPreemptSearches bounds
			// the searches of one pass: a deep queue of jobs that fit
			// nowhere would otherwise each search the whole cluster.
			sk := searchKey{kindOf(req, g), job.Priority, job.Queue, in.Reclaim[job.ID], need, job.Spec.MaxRuntime}
			// A job the idle cluster cannot hold is never helped by
			// evictions or by waiting for ends: it neither searches for
			// victims nor holds room. Each search and reservation reads
			// every node and allocation, and a few such jobs made half
			// of a 10,000-node pass.
			never := idleVerdict(nodes, g, req, idle).never
			search := !never && in.Preempt && !noVictims[sk] && (in.MaxPreemptSearches <= 0 || searches < in.MaxPreemptSearches || len(job.Preempting) > 0)
			if search {
				searches++
				pr, ok := pre.victimsFor(job, nodes, usage, req, g, policy, in.Reclaim[job.ID], need)
				if !ok && len(job.Preempting) == 0 {
					noVictims[sk] = true
				}
				if ok {
					res.Preemptions = append(res.Preemptions, pr)
					// Later jobs of the pass see the nodes held already:
					// two preemptors never count on one node.
					holds = append(holds, preemptHold(job.ID, pr.Nodes, nodeIdx))
					why := quota
					if need == 0 {
						why = base()
					}
					why.Add(Reason{Rule: RulePreempting, Detail: "preempting " + strings.Join(pr.Victims, ", ")})
					res.pending(job.ID, why)
					continue
				}
			}
			if need > 0 {
				res.pending(job.ID, quota)
				continue
			}
			if !never && len(held) < limit && in.Backfill && req.GPUs > 0 {
				if r, ok := reserveFor(job, &in, nodes, usage, req, g, policy, held); ok {
					held = append(held, r)
					res.Held = append(res.Held, r.hold(nodes))
				}
			}
			if in.MaxExplain > 0 && waits >= in.MaxExplain && job.Reason != "" {
				continue // keeps its last reason
			}
			waits++
			why := base()
			for _, r := range blocked {
				why.Add(Reason{Rule: RuleHeld, Detail: r.describe(nodes)})
			}
			res.pending(job.ID, why)
			continue
		}
		asg := make([]Assignment, len(slots))
		var touched []int
		for r, s := range slots {
			if !slices.Contains(touched, s.Node) {
				touched = append(touched, s.Node)
				touchedAll[s.Node] = true
			}
			n := nodes[s.Node]
			gpus := make([]int, len(s.GPUs))
			for i, gi := range s.GPUs {
				gpus[i] = index[s.Node][gi]
			}
			sort.Ints(gpus)
			asg[r] = Assignment{Rank: r, NodeID: n.ID, GPUs: gpus}
			al := req.Allocation(job.ID, n, gpus)
			al.JobID = job.ID // whom later jobs of the pass wait for
			usage[n.ID] = usage[n.ID].add(al)
		}
		res.Placements = append(res.Placements, Placement{JobID: job.ID, Request: req, Assignments: asg})
		if len(job.Preempting) > 0 {
			// Placed: the nodes it held are open to the rest of the pass.
			holds = slices.DeleteFunc(holds, func(r reservation) bool { return r.jobID == job.ID })
		}
		// PlaceGang updated this view; the others re-read the nodes it
		// placed on.
		for k, o := range views {
			if k != key {
				o.refresh(touched, nodes, usage)
			}
		}
		clear(explained)
	}
	cache.keep(nodes, usage, views, touchedAll)
	return res
}

// taskOf is one replica of the request as the packing layer sees it: a
// share of one GPU (GPUMilli < 1000), whole GPUs, or CPU only.
func taskOf(req Request) Task {
	t := Task{CPUMilli: req.CPUMilli, Memory: req.MemoryBytes, GPUs: req.GPUs, GPUMilli: MilliPerGPU}
	switch {
	case req.GPUs == 0:
		t.GPUMilli = 0
	case req.Shared():
		t.GPUMilli = req.GPUMilli
	}
	return t
}

// jobStates builds one NodeState per node as this job sees it: only the
// GPUs of the model and memory it accepts, with index mapping each back to
// the node's GPU index. A GPU's free milli is what allocations leave of
// it. For a share (whose GPU memory is its own, or its proportion of the
// GPU's), a GPU's free milli is capped at
// what the shares its free memory holds take (NodeState keeps no memory
// per GPU), so the job's replicas, all the same shape, never over-commit
// a GPU's memory either.
func jobStates(nodes []*api.Node, usage map[string]*Usage, req Request) ([]*NodeState, [][]int) {
	states := make([]*NodeState, len(nodes))
	index := make([][]int, len(nodes))
	for i, n := range nodes {
		states[i], index[i] = nodeStateFor(i, n, usage[n.ID], req)
	}
	return states, index
}

// nodeStateFor is jobStates for node n at position i, with usage u.
func nodeStateFor(i int, n *api.Node, u *Usage, req Request) (*NodeState, []int) {
	var index []int
	s := &NodeState{Name: n.Name, CPUMilli: n.CPUMilli, CPUFree: n.CPUMilli, Memory: n.MemoryBytes, MemFree: n.MemoryBytes,
		NotReady: n.Status != api.NodeReady, Order: i, Fabric: n.Fabric}
	if u != nil {
		s.CPUFree -= u.CPUMilli
		s.MemFree -= u.MemoryBytes
	}
	var numa, domains []int
	nvlinkKnown := false
	for gi, g := range n.GPUs {
		if r, _ := req.gpuRule(g); r != RuleNone {
			// The most telling rule: memory, when the model was right.
			if s.Excluded == RuleNone || r == RuleGPUMemory {
				s.Excluded = r
			}
			continue
		}
		free := max(0, MilliPerGPU-u.UsedMilli(gi))
		if req.Shared() {
			free = min(free, req.shares(g, u.UsedMilli(gi), u.UsedGPUMemory(gi))*req.GPUMilli)
		}
		s.Model = g.Model
		s.GPUMemory = g.MemoryBytes
		s.GPUFree = append(s.GPUFree, free)
		numa = append(numa, g.NUMANode)
		// A GPU without NVLink peers is a domain of its own.
		d := g.NVLinkDomain
		if len(g.NVLinkPeers) == 0 {
			d = -1 - gi
		} else {
			nvlinkKnown = true
		}
		domains = append(domains, d)
		index = append(index, gi)
	}
	for _, m := range numa {
		if m != numa[0] {
			s.NUMA = numa
			break
		}
	}
	for _, d := range domains {
		if nvlinkKnown && d != domains[0] {
			s.NVLinkGroup = domains
			break
		}
	}
	return s, index
}
