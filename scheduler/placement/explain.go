package placement

import (
	"fmt"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// pending records why a job stays pending: the explanation, and its text
// for callers that read Unplaced.
func (res *Result) pending(jobID string, e Explanation) {
	if res.Unplaced == nil {
		res.Unplaced = map[string]string{}
	}
	if res.Why == nil {
		res.Why = map[string]Explanation{}
	}
	res.Why[jobID] = e
	res.Unplaced[jobID] = e.Text()
}

// explainGang says why gang g of request req does not fit on the nodes as
// usage leaves them. Every node is seen as the planner sees it (jobStates)
// and judged by the planner's checkers (NodeState.Check): the count of
// nodes per rule is the planner's. When every rule passes on some nodes
// and the gang still does not fit, the gang rules say why (one node for
// sameNode, one NVLink domain per replica, one fabric, or too few
// replicas' room in all). The verdict reads the idle cluster: a job that
// could not fit even there "cannot fit on this cluster".
func explainGang(nodes []*api.Node, usage map[string]*Usage, g Gang, req Request) Explanation {
	return explainGangWith(nodes, usage, g, req, nil, nil)
}

// verdicts remembers, for one pass, the verdict on the idle cluster per
// request and gang: it reads only the nodes, which a pass does not change,
// while the rest of an explanation reads the usage, which every placement
// does.
type verdicts map[kindKey]verdictOf

type verdictOf struct {
	summary string
	never   bool
}

// explainGangWith is explainGang with the idle verdict taken from (and
// kept in) cache when it is not nil, and the nodes as the request sees
// them now taken from now when it is not nil (a pass's view of the
// request's kind holds them already; building them again was a fifth of
// an explanation's cost).
func explainGangWith(nodes []*api.Node, usage map[string]*Usage, g Gang, req Request, cache verdicts, now []*NodeState) Explanation {
	if len(nodes) == 0 {
		return Explanation{Summary: "no nodes are registered"}
	}
	g = g.withRules()
	replicas := max(g.Replicas, 1)
	t := g.Task
	gpuMem := ""
	if req.GPUMemoryBytes > 0 {
		gpuMem = spec.FormatBytes(req.GPUMemoryBytes)
	}
	// What the details quote: the models the request names (the view
	// filtered them out of the task).
	desc := t
	desc.Models = ModelAlternatives(req.GPUModel)

	if now == nil {
		now, _ = jobStates(nodes, usage, req)
	}
	var counts RuleCounts
	var fit []*NodeState
	held := map[Rule]map[string]bool{}
	for i, s := range now {
		if r := s.Check(t); r != RuleNone {
			counts[r]++
			if r.contested() {
				if held[r] == nil {
					held[r] = map[string]bool{}
				}
				addHolders(held[r], nodes[i], usage[nodes[i].ID], req)
			}
		} else {
			fit = append(fit, s)
		}
	}
	type named struct {
		ids  []string
		more int
	}
	holders := map[Rule]named{}
	for r, set := range held {
		if len(set) > 0 {
			ids, more := firstHolders(set)
			holders[r] = named{ids, more}
		}
	}
	e := Explanation{Fit: len(fit), Nodes: len(nodes)}
	for _, r := range counts.Reasons(desc, gpuMem) {
		if r.Rule == RuleNVLink && g.SameNode && replicas > 1 {
			r.Detail += fmt.Sprintf(" for each of the %d replicas", replicas)
		}
		r.Holders, r.MoreHolders = holders[r.Rule].ids, holders[r.Rule].more
		e.Add(r)
	}
	for _, r := range gangReasons(fit, g, replicas, desc, gpuMem) {
		e.Add(r)
	}
	v := idleVerdict(nodes, g, req, cache)
	e.Summary, e.Never = v.summary, v.never
	return e
}

// idleVerdict is what the idle cluster says of g: its summary, and whether
// it can never fit (on the ready nodes, with nothing running). It is
// taken from (and kept in) cache when that is not nil.
func idleVerdict(nodes []*api.Node, g Gang, req Request, cache verdicts) verdictOf {
	g = g.withRules()
	key := kindOf(req, g)
	v, ok := cache[key]
	if !ok {
		v.summary, v.never = verdict(jobStatesIdle(nodes, req), g, req, max(g.Replicas, 1))
		if cache != nil {
			cache[key] = v
		}
	}
	return v
}

// jobStatesIdle is the nodes as the request sees them with nothing
// running.
func jobStatesIdle(nodes []*api.Node, req Request) []*NodeState {
	s, _ := jobStates(nodes, nil, req)
	return s
}

// gangReasons say why a gang does not fit when the nodes in fit each take
// one replica: the same capacity the planner places by (capacity,
// planFewestNodes), counted without and with the gang's topology rules.
func gangReasons(fit []*NodeState, g Gang, replicas int, desc Task, gpuMem string) []Reason {
	if replicas <= 1 || len(fit) == 0 {
		return nil
	}
	t := g.Task
	loose := t
	loose.NVLink = false
	if g.SameNode {
		same, nv := 0, 0
		for _, s := range fit {
			switch {
			case capacity(s, loose) < replicas:
				same++
			case capacity(s, t) < replicas:
				nv++
			}
		}
		var out []Reason
		if same > 0 {
			out = append(out, Reason{Rule: RuleSameNode, Nodes: same, Detail: fmt.Sprintf("lack room for all %d replicas (sameNode)", replicas)})
		}
		if nv > 0 {
			out = append(out, Reason{Rule: RuleNVLink, Nodes: nv,
				Detail: nodeDetail(RuleNVLink, desc, gpuMem) + fmt.Sprintf(" for each of the %d replicas", replicas)})
		}
		return out
	}
	total, totalLoose := 0, 0
	perFabric := map[string]int{}
	for _, s := range fit {
		c := min(capacity(s, t), replicas)
		total += c
		totalLoose += min(capacity(s, loose), replicas)
		perFabric[s.Fabric] += c
	}
	switch {
	case total < replicas && totalLoose >= replicas:
		return []Reason{{Rule: RuleNVLink, Detail: fmt.Sprintf("with each replica's %d GPUs in one NVLink domain the nodes hold only %d of %d replicas now", t.GPUs, total, replicas)}}
	case total < replicas:
		return []Reason{{Rule: RuleReplicas, Detail: fmt.Sprintf("the nodes with room hold only %d of %d replicas now", total, replicas)}}
	case g.OneFabric && !g.Spread:
		most := 0
		for _, c := range perFabric {
			most = max(most, c)
		}
		if most < replicas {
			return []Reason{{Rule: RuleFabric, Detail: fmt.Sprintf("no fabric holds all %d replicas now (topology.rdma: required), one holds at most %d", replicas, most)}}
		}
	}
	return nil
}

// verdict is the summary of a pending gang, read on the idle cluster:
// "cannot fit on this cluster" (never set) with what is missing, or
// "waiting for resources".
func verdict(idle []*NodeState, g Gang, req Request, replicas int) (string, bool) {
	t := g.withRules().Task
	shape := fmt.Sprintf("%d replica(s) x %d GPU(s)", replicas, req.GPUs)
	if req.Shared() {
		shape = fmt.Sprintf("%d replica(s) x %dm of a GPU", replicas, req.GPUMilli)
		if req.GPUMemoryBytes > 0 {
			shape += " with " + spec.FormatBytes(req.GPUMemoryBytes)
		}
	}
	if req.GPUModel != "" {
		shape += " of model " + strings.Join(ModelAlternatives(req.GPUModel), " or ")
	}
	ready, largest, most, capacityIdle, fabricMost := 0, 0, 0, 0, 0
	perFabric := map[string]int{}
	for _, s := range idle {
		if s.NotReady {
			continue
		}
		ready++
		largest = max(largest, len(s.GPUFree))
		c := min(capacity(s, t), replicas)
		most = max(most, c)
		capacityIdle += c
		perFabric[s.Fabric] += c
		fabricMost = max(fabricMost, perFabric[s.Fabric])
	}
	switch {
	case ready == 0:
		return fmt.Sprintf("waiting for resources: %s, and no node is ready", shape), false
	case largest < req.GPUs:
		return fmt.Sprintf("cannot fit on this cluster: %s needs %d GPUs on one node, the largest ready node has %d matching", shape, req.GPUs, largest), true
	case req.SameNode && req.Shared() && most < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s on one node, the largest ready node holds %d such shares", shape, most), true
	case req.SameNode && largest < req.GPUs*replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s on one node needs %d GPUs, the largest ready node has %d matching", shape, req.GPUs*replicas, largest), true
	case req.SameNode && most < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s on one node, the largest ready node holds %d such replicas even when idle", shape, most), true
	case capacityIdle < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s, but the ready nodes hold only %d such replicas even when idle", shape, capacityIdle), true
	case g.OneFabric && !g.SameNode && !g.Spread && fabricMost < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s in one fabric (topology.rdma: required), but one fabric holds at most %d such replicas even when idle", shape, fabricMost), true
	}
	return "waiting for resources: " + shape, false
}

// addHolders adds to set the jobs holding GPUs of node that the request
// could use (its model and memory): the work a job rejected there for want
// of free GPUs waits for. A set, sorted once by the caller: a sorted list
// searched and re-sorted per node made explaining a job on a full cluster
// cost nodes x holders (10 s a pass at 10,000 full nodes).
func addHolders(set map[string]bool, node *api.Node, u *Usage, req Request) {
	if u == nil {
		return
	}
	for gi, g := range node.GPUs {
		id := u.Jobs[gi]
		if id == "" || set[id] {
			continue
		}
		if r, _ := req.gpuRule(g); r != RuleNone {
			continue
		}
		set[id] = true
	}
}
