package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// Rule is one feasibility rule. Every checker returns one (RuleNone when
// the node passes); a pending job's Explanation counts nodes per rule.
type Rule int

// The rules, per-node ones first in the order the checkers run, then the
// rules about a gang as a whole and about the job (the leader's pass adds
// the last ones: held nodes, ports, quota, victims still stopping).
const (
	RuleNone      Rule = iota
	RuleNotReady       // node is not ready
	RuleModel          // no GPU of an accepted model
	RuleGPUMemory      // GPUs of the model have too little memory
	RuleGPUTotal       // fewer GPUs in total than one replica needs
	RuleFreeGPUs       // too few completely free GPUs
	RuleGPUMilli       // no GPU with enough free milli (and memory) for a share
	RuleCPU            // too little free CPU
	RuleMemory         // too little free memory
	RuleNVLink         // too few free GPUs in one NVLink domain (topology.nvlink: required)

	RuleSameNode   // no node holds every replica (topology.sameNode)
	RuleReplicas   // the nodes with room hold fewer replicas than the gang has
	RuleFabric     // no fabric holds every replica (topology.rdma: required)
	RuleHeld       // nodes held for another job (backfill, preemption)
	RulePorts      // no free port for the rendezvous or the service
	RuleQuota      // the job's queue is at its quota
	RulePreempting // waiting for evicted work to stop
	RuleIneligible // nodes ineligible or draining
	RuleInvalid    // the job's resources cannot be read
	numRules
)

// ruleNames are the stable names a Reason carries as JSON.
var ruleNames = [numRules]string{
	RuleNone:       "none",
	RuleNotReady:   "not_ready",
	RuleModel:      "model",
	RuleGPUMemory:  "gpu_memory",
	RuleGPUTotal:   "gpu_total",
	RuleFreeGPUs:   "free_gpus",
	RuleGPUMilli:   "gpu_milli",
	RuleCPU:        "cpu",
	RuleMemory:     "memory",
	RuleNVLink:     "nvlink",
	RuleSameNode:   "same_node",
	RuleReplicas:   "replicas",
	RuleFabric:     "fabric",
	RuleHeld:       "held",
	RulePorts:      "ports",
	RuleQuota:      "quota",
	RulePreempting: "preempting",
	RuleIneligible: "ineligible",
	RuleInvalid:    "invalid",
}

func (r Rule) String() string {
	if r < 0 || r >= numRules {
		return fmt.Sprintf("rule(%d)", int(r))
	}
	return ruleNames[r]
}

// MarshalText writes the rule's stable name ("nvlink").
func (r Rule) MarshalText() ([]byte, error) {
	if r < 0 || r >= numRules {
		return nil, fmt.Errorf("placement: unknown rule %d", int(r))
	}
	return []byte(ruleNames[r]), nil
}

// UnmarshalText reads a rule's stable name.
func (r *Rule) UnmarshalText(b []byte) error {
	for i, n := range ruleNames {
		if n == string(b) {
			*r = Rule(i)
			return nil
		}
	}
	return fmt.Errorf("placement: unknown rule %q", b)
}

// Reason is one rule that keeps a job pending. A per-node reason counts
// the nodes it rejected and its Detail reads after that count, in the
// plural ("lack 8 free GPUs": "3 nodes lack 8 free GPUs"); a reason about
// the gang or the job has Nodes 0 and its Detail is a whole clause ("no
// fabric holds all 4 replicas now").
type Reason struct {
	Rule   Rule   `json:"rule"`
	Nodes  int    `json:"nodes,omitempty"`
	Detail string `json:"detail"`
	// Holders are the jobs holding GPUs on the nodes a contested-GPU rule
	// (free GPUs, a share's room, NVLink) rejected, sorted: whom the job
	// waits for. Text leaves them out; the CLI names them.
	Holders []string `json:"holders,omitempty"`
	// MoreHolders counts the holders past Holders, which names only the
	// first api.MaxReasonHolders (a full cluster has thousands).
	MoreHolders int `json:"moreHolders,omitempty"`
}

// Explanation is why a job stays pending: the verdict on its shape, how
// many nodes could take one replica now, and the reasons, counted per rule.
// Text renders it; it is the one place pending reasons become text.
type Explanation struct {
	// Summary is the verdict and the job's shape ("waiting for resources:
	// 2 replica(s) x 4 GPU(s)", "cannot fit on this cluster: ..."); empty
	// when a job-level reason says it all (quota).
	Summary string `json:"summary,omitempty"`
	// Never is set when the job cannot fit even on the idle cluster.
	Never bool `json:"never,omitempty"`
	// Fit of Nodes can take one replica now; Nodes is 0 when no node was
	// looked at (and the count is not rendered).
	Fit     int      `json:"fit"`
	Nodes   int      `json:"nodes"`
	Reasons []Reason `json:"reasons,omitempty"`
}

// Explain makes an explanation of job-level reasons only (quota, ports,
// an invalid spec).
func Explain(rs ...Reason) Explanation { return Explanation{Reasons: rs} }

// Add records a reason. A per-node reason of a rule already counted with
// the same detail adds its nodes to it, so each rule is counted once.
// It copies the reasons first: explanations are values, and copies of one
// (a cached explanation extended per job) never share them.
func (e *Explanation) Add(r Reason) {
	rs := make([]Reason, len(e.Reasons), len(e.Reasons)+1)
	copy(rs, e.Reasons)
	e.Reasons = rs
	if r.Nodes > 0 {
		for i := range e.Reasons {
			if x := &e.Reasons[i]; x.Rule == r.Rule && x.Detail == r.Detail && x.Nodes > 0 {
				x.Nodes += r.Nodes
				x.Holders, x.MoreHolders = mergeHolders(x.Holders, r.Holders, x.MoreHolders+r.MoreHolders)
				return
			}
		}
	}
	e.Reasons = append(e.Reasons, r)
}

// Count is the nodes the rule rejected.
func (e Explanation) Count(r Rule) int {
	n := 0
	for _, x := range e.Reasons {
		if x.Rule == r {
			n += x.Nodes
		}
	}
	return n
}

// Has reports whether some reason is of the rule.
func (e Explanation) Has(r Rule) bool {
	for _, x := range e.Reasons {
		if x.Rule == r {
			return true
		}
	}
	return false
}

// Text renders the explanation: "waiting for resources: 1 replica(s) x 8
// GPU(s) (0/4 nodes can take a replica now; 3 nodes lack 8 free GPUs, 1
// node is not ready); node(s) n1 held for job big for about 10m". Per-node
// reasons are listed most common first (ties in rule order), job-level
// ones follow in the order they were added.
func (e Explanation) Text() string {
	var nodes, job []Reason
	for _, r := range e.Reasons {
		if r.Nodes > 0 {
			nodes = append(nodes, r)
		} else if r.Detail != "" {
			job = append(job, r)
		}
	}
	sort.SliceStable(nodes, func(i, k int) bool {
		if nodes[i].Nodes != nodes[k].Nodes {
			return nodes[i].Nodes > nodes[k].Nodes
		}
		return nodes[i].Rule < nodes[k].Rule
	})
	var b strings.Builder
	b.WriteString(e.Summary)
	if e.Nodes > 0 || len(nodes) > 0 {
		parts := make([]string, 0, len(nodes)+1)
		if e.Nodes > 0 {
			parts = append(parts, fmt.Sprintf("%d/%d nodes can take a replica now", e.Fit, e.Nodes))
		}
		list := make([]string, len(nodes))
		for i, r := range nodes {
			list[i] = nodeClause(r)
		}
		if len(list) > 0 {
			parts = append(parts, strings.Join(list, ", "))
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("(" + strings.Join(parts, "; ") + ")")
	}
	for _, r := range job {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Detail)
	}
	return b.String()
}

func (e Explanation) String() string { return e.Text() }

// nodeClause is "3 nodes lack 8 free GPUs" or "1 node lacks 8 free GPUs".
func nodeClause(r Reason) string {
	if r.Nodes == 1 {
		return "1 node " + singular(r.Detail)
	}
	return fmt.Sprintf("%d nodes %s", r.Nodes, r.Detail)
}

// singular turns a plural detail's leading verb singular.
func singular(detail string) string {
	verb, rest, _ := strings.Cut(detail, " ")
	switch verb {
	case "are":
		verb = "is"
	case "have":
		verb = "has"
	case "":
		return detail
	default:
		verb += "s"
	}
	if rest == "" {
		return verb
	}
	return verb + " " + rest
}

// nodeDetail is a per-node rule's detail for a task (plural, to follow a
// node count). gpuMem is the request's GPU memory as text ("20Gi"), ""
// when it names none.
func nodeDetail(r Rule, t Task, gpuMem string) string {
	switch r {
	case RuleNotReady:
		return "are not ready"
	case RuleModel:
		if len(t.Models) == 0 {
			return "have no GPUs"
		}
		return "lack GPUs of model " + strings.Join(t.Models, " or ")
	case RuleGPUMemory:
		if gpuMem == "" {
			return "lack GPUs with enough memory"
		}
		return "lack GPUs with " + gpuMem + " of memory"
	case RuleGPUTotal:
		return "have fewer GPUs in total than one replica needs"
	case RuleFreeGPUs:
		return fmt.Sprintf("lack %s", gpus(t.GPUs, "free"))
	case RuleGPUMilli:
		if gpuMem != "" {
			return fmt.Sprintf("have no GPU with %dm and %s free", t.GPUMilli, gpuMem)
		}
		return fmt.Sprintf("have no GPU with %dm free", t.GPUMilli)
	case RuleCPU:
		return "have too little free CPU"
	case RuleMemory:
		return "have too little free memory"
	case RuleNVLink:
		return fmt.Sprintf("lack %s in one NVLink domain", gpus(t.GPUs, "free"))
	}
	return "are rejected by rule " + r.String()
}

// gpus is "1 free GPU" or "8 free GPUs".
func gpus(n int, adj string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s GPU", n, adj)
	}
	return fmt.Sprintf("%d %s GPUs", n, adj)
}

// RuleCounts counts nodes per rule.
type RuleCounts [numRules]int

// Reasons are the counts as per-node reasons for task t, in rule order.
// gpuMem is the task's GPU memory as text, "" for none.
func (c *RuleCounts) Reasons(t Task, gpuMem string) []Reason {
	var out []Reason
	for r := RuleNotReady; r < numRules; r++ {
		if c[r] > 0 {
			out = append(out, Reason{Rule: r, Nodes: c[r], Detail: nodeDetail(r, t, gpuMem)})
		}
	}
	return out
}

// A checker is one per-node feasibility rule: RuleNone when the node can
// take the task as far as this rule is concerned.
type checker func(n *NodeState, t Task) Rule

// checkers is the feasibility pipeline, cheapest and most decisive first.
// NodeState.Check runs it for the planner, for the explanation of a
// pending job and for Fit, the re-check of a plan.
var checkers = []checker{
	checkReady,
	checkModel,
	checkGPUMemory,
	checkGPUTotal,
	checkFreeGPUs,
	checkGPUMilli,
	checkCPU,
	checkMemory,
	checkNVLink,
}

func checkReady(n *NodeState, _ Task) Rule {
	if n.NotReady {
		return RuleNotReady
	}
	return RuleNone
}

// checkModel: the node has GPUs and they are of a model the task takes.
// A node the engine's view left without GPUs says which rule left them
// out (Excluded: model or GPU memory).
func checkModel(n *NodeState, t Task) Rule {
	if t.GPUs == 0 {
		return RuleNone
	}
	if len(n.GPUFree) == 0 {
		if n.Excluded != RuleNone {
			return n.Excluded
		}
		return RuleModel
	}
	if !ModelAccepted(n.Model, t.Models) {
		return RuleModel
	}
	return RuleNone
}

func checkGPUMemory(n *NodeState, t Task) Rule {
	if t.GPUs > 0 && t.GPUMemory > 0 && n.GPUMemory < t.GPUMemory {
		return RuleGPUMemory
	}
	return RuleNone
}

func checkGPUTotal(n *NodeState, t Task) Rule {
	if t.GPUs > len(n.GPUFree) {
		return RuleGPUTotal
	}
	return RuleNone
}

func checkFreeGPUs(n *NodeState, t Task) Rule {
	if t.GPUs == 0 || t.Shared() {
		return RuleNone
	}
	if n.FullyFree() < t.GPUs {
		return RuleFreeGPUs
	}
	return RuleNone
}

func checkGPUMilli(n *NodeState, t Task) Rule {
	if !t.Shared() {
		return RuleNone
	}
	for _, f := range n.GPUFree {
		if f >= t.GPUMilli {
			return RuleNone
		}
	}
	return RuleGPUMilli
}

func checkCPU(n *NodeState, t Task) Rule {
	if n.CPUFree < t.CPUMilli {
		return RuleCPU
	}
	return RuleNone
}

func checkMemory(n *NodeState, t Task) Rule {
	if n.MemFree < t.Memory {
		return RuleMemory
	}
	return RuleNone
}

// checkNVLink: a replica that requires NVLink gets its whole GPUs free in
// one NVLink domain, on a node that says which GPUs share one and has a
// domain that large (a replica larger than every domain of the node takes
// what it can, as it would on any node of that kind).
func checkNVLink(n *NodeState, t Task) Rule {
	if !t.NVLink || t.Shared() || t.GPUs <= 1 || n.NVLinkGroup == nil {
		return RuleNone
	}
	if t.GPUs > maxDomain(n) || domainReplicas(n, t.GPUs) > 0 {
		return RuleNone
	}
	return RuleNVLink
}

// domainReplicas is how many replicas of k whole GPUs fit on n with each
// replica's GPUs in one NVLink domain (nil NVLinkGroup: one domain).
func domainReplicas(n *NodeState, k int) int {
	if k <= 0 {
		return 0
	}
	if n.NVLinkGroup == nil {
		return n.FullyFree() / k
	}
	total := 0
	for i, d := range n.NVLinkGroup {
		first := true
		for _, e := range n.NVLinkGroup[:i] {
			if e == d {
				first = false
				break
			}
		}
		if !first {
			continue
		}
		free := 0
		for j := i; j < len(n.NVLinkGroup); j++ {
			if n.NVLinkGroup[j] == d && n.GPUFree[j] == MilliPerGPU {
				free++
			}
		}
		total += free / k
	}
	return total
}

// mergeHolders is the sorted union of two sorted lists of job IDs (a new
// slice: reasons are values that copies share), cut to the first
// api.MaxReasonHolders, with more, the holders the lists left out already,
// plus those the cut leaves out. A job left out of both lists and named in
// neither is counted once per list: the count may over-state by the jobs
// holding GPUs on nodes of both reasons, which only a multi-node job does.
func mergeHolders(a, b []string, more int) ([]string, int) {
	if len(b) == 0 {
		return a, more
	}
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	if len(out) > api.MaxReasonHolders {
		more += len(out) - api.MaxReasonHolders
		out = out[:api.MaxReasonHolders:api.MaxReasonHolders]
	}
	return out, more
}

// firstHolders is the api.MaxReasonHolders smallest job IDs of set, sorted,
// and how many it leaves out: a reason names only these, and sorting every
// holder of a full cluster for each explanation was most of its cost.
func firstHolders(set map[string]bool) ([]string, int) {
	k := api.MaxReasonHolders
	top := make([]string, 0, min(k, len(set)))
	for id := range set {
		if len(top) == k && id >= top[k-1] {
			continue
		}
		i, _ := slices.BinarySearch(top, id)
		if len(top) == k {
			top = top[:k-1]
		}
		top = slices.Insert(top, i, id)
	}
	return top, len(set) - len(top)
}

// contested reports whether a per-node rule rejects a node for GPUs that
// other work holds (the node would take the job were they free).
func (r Rule) contested() bool {
	return r == RuleFreeGPUs || r == RuleGPUMilli || r == RuleNVLink
}
