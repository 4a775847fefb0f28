package state

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

var rewrite = flag.Bool("rewrite", false, "TestData: rewrite the expected blocks of testdata/*.txt with what the FSM now does")

// TestData replays the scripts in testdata/*.txt against a real FSM, one
// Raft index per command, as etcd-raft's datadriven tests do. Each file
// starts from an empty store. A script is a list of blocks:
//
//	COMMAND ARGS          one command (a plan takes its lines below it)
//	----
//	EXPECTED OUTPUT       up to a blank line
//
// Lines starting with "#" between blocks are comments. `go test
// ./scheduler/state -run TestData -rewrite` writes what the FSM now prints
// into every expected block (review the diff before committing it).
//
// Commands (DUR is a Go duration; times are the script's clock, which
// starts at t0 and moves with tick; VALUE may be "double quoted"):
//
//	node NAME [gpus=N] [id=ID] [cpu=CORES] [ram=GI] [gpumem=GI]   UpsertNode: a ready node, N (4) H200s of
//	                                                 GPUMEM (141) Gi; ID defaults to id-NAME
//	job ID [replicas=R] [gpus=G] [milli=M] [gpumem=Q] [prio=P] [queue=Q]
//	       [restarts=N] [backoff=DUR] [token=T]      RegisterJob (defaults: 1 replica, 1 GPU, priority 50)
//	       [service]                                 service: an inference job the leader marked a service
//	plan                                             ApplyPlan, with one line per entry:
//	  place JOB SLOT... [attempt=A] [port=P|none] [id=PREFIX] [gpumem=GI] [cpu=CORES] [ram=GI]
//	        [ranks=R,...] [ids=ID,...] [sport=P]     rank i on SLOT i, NODE:GPUS or NODE:GPU@MILLI (a
//	                                                 share); allocation IDs PREFIX-i (PREFIX: JOB,
//	                                                 or JOB.aA at attempt A>0); rendezvous port: a
//	                                                 fresh one (30000 up) unless given; ranks= and
//	                                                 ids= override ranks and IDs (broken plans);
//	                                                 sport= a service port P+i for rank i
//	  pending JOB REASON...                          the job's new pending reason
//	  preempt JOB VICTIM,... [reclaim] [hold=NODE,...] [until=DUR] [stop=CAUSE]
//	  rollout JOB VERSION [stop=ID,...] [status=S] [msg=M]   a service rollout's step
//	  (place takes [version=V]: the allocations' job version)
//	update JOB [version=V] [replicas=R] [gpus=G] [prio=P] [queue=Q] [kind=K]    UpdateJob: the job's spec
//	       [rollout] [inplace=ID,...] [canary=N] [parallel=N] [autorevert]     with those changes, made
//	       [stopfirst]
//	                                                 against version V (default: the job's)
//	promote JOB version=V                            PromoteJob
//	scale JOB N [reason=R]                           ScaleJob: a running service's replica count
//	report ALLOC STATUS [exit=N] [signal=S] [msg=M]  AllocStatus, as an agent reports it
//	       [ready=true|false] [stop=CAUSE]           (a service replica's health)
//	       [ckpt=STEP]                               a checkpoint at file:///ckpt/ALLOC/STEP
//	down NODE [info=I] [stop=CAUSE] | ready NODE     NodeStatus
//	eligible NODE | ineligible NODE                  NodeEligibility
//	drain NODE deadline=DUR | drain NODE cancel | drain NODE complete
//	cancel JOB [reason=R] [stop=CAUSE]               CancelJob
//	migrate JOB... [reason=R] [node=NAME] [stop=CAUSE]  MigrateJobs (NAME: the draining node)
//	gc JOB... before=DUR                             GCJobs
//	tick DUR                                         moves the clock (no command)
//	state                                            prints every node, job and allocation
//	index                                            prints the tables' Raft indexes
//	events JOB                                       prints the job's events, one a line:
//	                                                 @INDEX +TIME TYPE MESSAGE
//
// stop=CAUSE is the command's StopCause, as the leader now names it: the
// status the allocations it stops end in. Without it a command is an entry
// written before stop causes existed.
//
// A command prints its answer (ok, error: ..., placed/rejected/preempted
// for a plan), then every object it wrote or changed, and "gone KIND ID"
// for each it removed. Objects print as:
//
//	node NAME STATUS gpus=N [ineligible] [drain=+DUR] [info=...]
//	job ID STATUS prio=P [attempt=N] [migrations=N] [preemptions=N] [start=+DUR] [end=+DUR] [after=+DUR]
//	    [preempting=V,...] [held=NODE,... until=+DUR] [reason=...] [last-preemption=...]
//	    [replica=RANK:restarts=N,streak=S[,after=+DUR][,exit=N][,signal=S] ...]   (services)
//	alloc ID NODE[GPUS][@MILLI][/GPUMEM] attempt=A STATUS/DESIRED [cause=C] [start=+DUR] [end=+DUR] [exit=N] [signal=S] [msg=...]
//
// Times print as offsets from t0.
func TestData(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

// block is one command of a script and what it should print.
type block struct {
	line  int      // of the command, for messages
	cmd   []string // the command and its input lines
	want  []string
	after []string // comments and blank lines up to the next block
}

func parseScript(t *testing.T, path string) (head []string, blocks []*block) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	trail := &head
	for i := 0; i < len(lines); {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			*trail = append(*trail, l)
			i++
			continue
		}
		b := &block{line: i + 1}
		for ; i < len(lines) && lines[i] != "----"; i++ {
			if strings.TrimSpace(lines[i]) == "" {
				t.Fatalf("%s:%d: blank line inside a command (missing ----)", path, i+1)
			}
			b.cmd = append(b.cmd, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: command without ---- and expected output", path, b.line)
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			b.want = append(b.want, lines[i])
		}
		blocks = append(blocks, b)
		trail = &b.after
	}
	return head, blocks
}

func runScript(t *testing.T, path string) {
	head, blocks := parseScript(t, path)
	d := &driver{t: t, fsm: NewFSM(zap.NewNop()), now: t0, nextPort: 30000}
	failed := false
	for _, b := range blocks {
		got := d.run(path, b)
		if !*rewrite && !slices.Equal(got, b.want) {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.line, strings.Join(b.cmd, " / "),
				strings.Join(got, "\n"), strings.Join(b.want, "\n"))
			failed = true
		}
		b.want = got
	}
	if !*rewrite || failed {
		return
	}
	var out strings.Builder
	for _, l := range head {
		out.WriteString(l + "\n")
	}
	for _, b := range blocks {
		for _, l := range b.cmd {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		for _, l := range b.want {
			out.WriteString(l + "\n")
		}
		for _, l := range b.after {
			out.WriteString(l + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// driver applies a script's commands to an FSM, one index each.
type driver struct {
	t        *testing.T
	fsm      *FSM
	index    uint64
	now      time.Time
	nextPort int
}

// args are a command line's words: positional ones and key=value options.
type args struct {
	pos   []string
	opts  map[string]string
	flags map[string]bool
}

// words splits a line on spaces, keeping "double quoted" runs whole (the
// quotes are dropped).
func words(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, c := range line {
		switch {
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func parseArgs(ws []string) args {
	a := args{opts: map[string]string{}, flags: map[string]bool{}}
	for _, w := range ws {
		if k, v, ok := strings.Cut(w, "="); ok {
			a.opts[k] = v
		} else if len(a.pos) > 0 && (w == "reclaim" || w == "cancel" || w == "complete" || w == "service" || w == "rollout" || w == "autorevert" || w == "stopfirst") {
			a.flags[w] = true
		} else {
			a.pos = append(a.pos, w)
		}
	}
	return a
}

// cmdError is a script mistake (not an FSM answer): the test stops.
type cmdError struct{ msg string }

func (d *driver) fail(format string, v ...any) { panic(cmdError{fmt.Sprintf(format, v...)}) }

func (d *driver) intOpt(a args, key string, def int) int {
	v, ok := a.opts[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		d.fail("%s=%q is not a number", key, v)
	}
	return n
}

func (d *driver) durOpt(a args, key string) time.Duration {
	v, ok := a.opts[key]
	if !ok {
		d.fail("%s= is required", key)
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		d.fail("%s=%q: %v", key, v, err)
	}
	return dur
}

func (d *driver) run(path string, b *block) (out []string) {
	defer func() {
		if r := recover(); r != nil {
			ce, ok := r.(cmdError)
			if !ok {
				panic(r)
			}
			d.t.Fatalf("%s:%d: %s", path, b.line, ce.msg)
		}
	}()
	ws := words(b.cmd[0])
	a := parseArgs(ws[1:])
	need := func(n int) {
		if len(a.pos) < n {
			d.fail("%s needs %d arguments", ws[0], n)
		}
	}
	if ws[0] != "plan" && len(b.cmd) > 1 {
		d.fail("%s takes no input lines", ws[0])
	}
	switch ws[0] {
	case "tick":
		need(1)
		dur, err := time.ParseDuration(a.pos[0])
		if err != nil {
			d.fail("tick %q: %v", a.pos[0], err)
		}
		d.now = d.now.Add(dur)
		return []string{"now " + since(d.now)}
	case "state":
		return d.render(d.fsm.Store().Snapshot())
	case "events":
		need(1)
		j := d.fsm.Store().Snapshot().Job(nil, a.pos[0])
		if j == nil {
			return []string{"no job " + a.pos[0]}
		}
		var out []string
		for _, e := range j.Events {
			out = append(out, fmt.Sprintf("@%d %s %s %s", e.Index, since(e.Time), e.Type, e.Message))
		}
		return append(out, fmt.Sprintf("%d events", len(j.Events)))
	case "index":
		s := d.fsm.Store().Snapshot()
		return []string{fmt.Sprintf("nodes=%d jobs=%d allocs=%d", s.Index(TableNodes), s.Index(TableJobs), s.Index(TableAllocs))}
	}

	var typ MessageType
	var req any
	switch ws[0] {
	case "node":
		need(1)
		typ, req = UpsertNodeType, UpsertNodeRequest{Node: d.node(a)}
	case "job":
		need(1)
		typ, req = RegisterJobType, RegisterJobRequest{Job: d.job(a)}
	case "plan":
		typ, req = ApplyPlanType, ApplyPlanRequest{Plan: d.plan(b.cmd[1:]), Time: d.now}
	case "report":
		need(2)
		u := api.AllocStatusUpdate{Status: a.pos[1], Signal: a.opts["signal"], Message: a.opts["msg"], Progress: a.opts["progress"]}
		if _, ok := a.opts["ckpt"]; ok {
			step := d.intOpt(a, "ckpt", 0)
			u.Checkpoint = &api.CheckpointRef{URI: fmt.Sprintf("file:///ckpt/%s/%d", a.pos[0], step), Step: int64(step), Time: d.now}
		}
		if _, ok := a.opts["exit"]; ok {
			code := d.intOpt(a, "exit", 0)
			u.ExitCode = &code
		}
		if v, ok := a.opts["ready"]; ok {
			ready := v == "true"
			u.Ready = &ready
		}
		typ, req = AllocStatusType, AllocStatusRequest{AllocID: a.pos[0], Update: u, Time: d.now, StopCause: a.opts["stop"]}
	case "down", "ready":
		need(1)
		typ, req = NodeStatusType, NodeStatusRequest{NodeID: d.nodeID(a.pos[0]), Status: ws[0], Info: a.opts["info"], Time: d.now, StopCause: a.opts["stop"]}
	case "eligible", "ineligible":
		need(1)
		typ, req = NodeEligibilityType, NodeEligibilityRequest{NodeID: d.nodeID(a.pos[0]), Eligible: ws[0] == "eligible"}
	case "drain":
		need(1)
		r := NodeDrainRequest{NodeID: d.nodeID(a.pos[0]), Complete: a.flags["complete"]}
		if !a.flags["cancel"] && !a.flags["complete"] {
			r.Drain = &api.DrainStrategy{Deadline: d.now.Add(d.durOpt(a, "deadline"))}
		}
		typ, req = NodeDrainType, r
	case "cancel":
		need(1)
		typ, req = CancelJobType, CancelJobRequest{JobID: a.pos[0], Reason: a.opts["reason"], Time: d.now, StopCause: a.opts["stop"]}
	case "migrate":
		need(1)
		r := MigrateJobsRequest{JobIDs: a.pos, Reason: a.opts["reason"], Time: d.now, StopCause: a.opts["stop"]}
		if n, ok := a.opts["node"]; ok {
			r.NodeID = d.nodeID(n)
		}
		typ, req = MigrateJobsType, r
	case "gc":
		need(1)
		typ, req = GCJobsType, GCJobsRequest{JobIDs: a.pos, Before: d.now.Add(d.durOpt(a, "before"))}
	case "update":
		need(1)
		typ, req = UpdateJobType, d.update(a)
	case "scale":
		need(2)
		n, err := strconv.Atoi(a.pos[1])
		if err != nil {
			d.fail("scale %s: %q is not a number", a.pos[0], a.pos[1])
		}
		typ, req = ScaleJobType, ScaleJobRequest{JobID: a.pos[0], Replicas: n, Reason: a.opts["reason"], Time: d.now}
	case "promote":
		need(1)
		typ, req = PromoteJobType, PromoteJobRequest{JobID: a.pos[0], Version: d.intOpt(a, "version", 0), Time: d.now}
	default:
		d.fail("unknown command %q", ws[0])
	}
	before := d.fsm.Store().Snapshot()
	data, err := Encode(typ, req)
	if err != nil {
		d.fail("encode %s: %v", typ, err)
	}
	d.index++
	resp := d.fsm.ApplyEntry(d.index, data)
	out = answer(resp)
	return append(out, d.changes(before, d.fsm.Store().Snapshot())...)
}

// nodeID is the ID of the node named name (id-NAME when it is unknown,
// so that a script can name a node that does not exist).
func (d *driver) nodeID(name string) string {
	if n := d.fsm.Store().Snapshot().NodeByName(nil, name); n != nil {
		return n.ID
	}
	return "id-" + name
}

func (d *driver) node(a args) *api.Node {
	name := a.pos[0]
	n := &api.Node{ID: "id-" + name, Name: name, Address: "10.0." + strconv.Itoa(len(name)) + "." + name[len(name)-1:],
		Status: api.NodeReady, CPUMilli: int64(d.intOpt(a, "cpu", 64)) * 1000,
		MemoryBytes: int64(d.intOpt(a, "ram", 512)) * gi, RegisterTime: d.now}
	if id, ok := a.opts["id"]; ok {
		n.ID = id
	}
	for i := range d.intOpt(a, "gpus", 4) {
		n.GPUs = append(n.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", n.ID, i), Model: "NVIDIA H200",
			MemoryBytes: int64(d.intOpt(a, "gpumem", 141)) * gi})
	}
	return n
}

func (d *driver) job(a args) *api.Job {
	j := testJob(a.pos[0], d.intOpt(a, "replicas", 1), d.intOpt(a, "gpus", 1))
	j.Priority = d.intOpt(a, "prio", 50)
	j.Spec.Priority = j.Priority
	if q, ok := a.opts["queue"]; ok {
		j.Queue, j.Spec.Queue = q, q
	}
	j.Spec.Resources.GPUMilli = d.intOpt(a, "milli", 0)
	j.Spec.Resources.GPUMemory = spec.Quantity(a.opts["gpumem"])
	j.Spec.Restart.MaxRestarts = d.intOpt(a, "restarts", 0)
	if _, ok := a.opts["backoff"]; ok {
		j.Spec.Restart.Backoff = spec.Duration(d.durOpt(a, "backoff"))
	}
	j.SubmitToken = a.opts["token"]
	j.SubmitTime = d.now
	if a.flags["service"] {
		j.Kind, j.Spec.Kind, j.Service = spec.KindInference, spec.KindInference, true
	}
	return j
}

func (d *driver) plan(lines []string) Plan {
	var p Plan
	for _, l := range lines {
		ws := words(l)
		if len(ws) < 2 {
			d.fail("plan line %q names no job", l)
		}
		switch ws[0] {
		case "place":
			p.Placements = append(p.Placements, d.placement(parseArgs(ws[1:])))
		case "pending":
			p.Pending = append(p.Pending, PendingReason{JobID: ws[1], Reason: strings.Join(ws[2:], " ")})
		case "preempt":
			a := parseArgs(ws[1:])
			if len(a.pos) != 2 {
				d.fail("preempt JOB VICTIM,...: got %q", l)
			}
			pr := Preemption{JobID: a.pos[0], Victims: strings.Split(a.pos[1], ","), Reclaim: a.flags["reclaim"], StopCause: a.opts["stop"]}
			if h, ok := a.opts["hold"]; ok {
				pr.Nodes = strings.Split(h, ",")
				pr.HoldUntil = d.now.Add(d.durOpt(a, "until"))
			}
			p.Preemptions = append(p.Preemptions, pr)
		case "rollout":
			a := parseArgs(ws[1:])
			if len(a.pos) != 2 {
				d.fail("rollout JOB VERSION: got %q", l)
			}
			v, err := strconv.Atoi(a.pos[1])
			if err != nil {
				d.fail("rollout %q: version %q is not a number", l, a.pos[1])
			}
			st := RolloutStep{JobID: a.pos[0], Version: v, Status: a.opts["status"], Message: a.opts["msg"]}
			if ids, ok := a.opts["stop"]; ok {
				st.Stop = strings.Split(ids, ",")
			}
			p.Rollouts = append(p.Rollouts, st)
		default:
			d.fail("unknown plan line %q (place, pending, preempt or rollout)", l)
		}
	}
	return p
}

func (d *driver) placement(a args) JobPlacement {
	jobID, slots := a.pos[0], a.pos[1:]
	attempt := d.intOpt(a, "attempt", 0)
	prefix := jobID
	if attempt > 0 {
		prefix = fmt.Sprintf("%s.a%d", jobID, attempt)
	}
	if id, ok := a.opts["id"]; ok {
		prefix = id
	}
	port := 0
	switch v := a.opts["port"]; v {
	case "":
		port = d.nextPort
		d.nextPort++
	case "none":
	default:
		port = d.intOpt(a, "port", 0)
	}
	p := JobPlacement{JobID: jobID}
	for r, s := range slots {
		node, gpus, ok := strings.Cut(s, ":")
		if !ok {
			d.fail("slot %q is not NODE:GPUS", s)
		}
		al := &api.Allocation{ID: fmt.Sprintf("%s-%d", prefix, r), JobID: jobID, NodeID: d.nodeID(node), Node: node,
			Rank: r, WorldSize: len(slots), Attempt: attempt, JobVersion: d.intOpt(a, "version", 0),
			CPUMilli: int64(d.intOpt(a, "cpu", 1)) * 1000, MemoryBytes: int64(d.intOpt(a, "ram", 1)) * gi,
			GPUMemoryBytes: int64(d.intOpt(a, "gpumem", 0)) * gi,
			Task:           spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
		if g, milli, share := strings.Cut(gpus, "@"); share {
			gpus = g
			m, err := strconv.ParseInt(milli, 10, 64)
			if err != nil {
				d.fail("slot %q: share %q is not a number", s, milli)
			}
			al.GPUMilli = m
		}
		for _, g := range strings.Split(gpus, ",") {
			n, err := strconv.Atoi(g)
			if err != nil {
				d.fail("slot %q: GPU %q is not a number", s, g)
			}
			al.GPUs = append(al.GPUs, n)
		}
		if port != 0 {
			al.MasterAddr, al.MasterPort = "10.0.0.1", port
		}
		if _, ok := a.opts["sport"]; ok {
			al.Port = d.intOpt(a, "sport", 0) + r
		}
		p.Allocs = append(p.Allocs, al)
	}
	// ranks= and ids= override what the slots say, to write plans a
	// correct leader never makes.
	if v, ok := a.opts["ranks"]; ok {
		for i, r := range strings.Split(v, ",") {
			n, err := strconv.Atoi(r)
			if err != nil || i >= len(p.Allocs) {
				d.fail("ranks=%q: one number per slot", v)
			}
			p.Allocs[i].Rank = n
		}
	}
	if v, ok := a.opts["ids"]; ok {
		for i, id := range strings.Split(v, ",") {
			if i >= len(p.Allocs) {
				d.fail("ids=%q: one ID per slot", v)
			}
			p.Allocs[i].ID = id
		}
	}
	return p
}

// update is an UpdateJob of a job's current spec with a's changes.
func (d *driver) update(a args) UpdateJobRequest {
	j := d.fsm.Store().Snapshot().Job(nil, a.pos[0])
	if j == nil {
		d.fail("update: no job %s", a.pos[0])
	}
	ns := j.Spec
	ns.Replicas = d.intOpt(a, "replicas", ns.Replicas)
	ns.Resources.GPUs = d.intOpt(a, "gpus", ns.Resources.GPUs)
	ns.Priority = d.intOpt(a, "prio", ns.Priority)
	if q, ok := a.opts["queue"]; ok {
		ns.Queue = q
	}
	if k, ok := a.opts["kind"]; ok {
		ns.Kind = k
	}
	if _, ok := a.opts["canary"]; ok || a.opts["parallel"] != "" || a.flags["autorevert"] || a.flags["stopfirst"] {
		ns.Update = &spec.Update{MaxParallel: d.intOpt(a, "parallel", 1), Canary: d.intOpt(a, "canary", 0), AutoRevert: a.flags["autorevert"], StopFirst: a.flags["stopfirst"]}
	}
	r := UpdateJobRequest{JobID: j.ID, Spec: ns, Version: d.intOpt(a, "version", j.Version), Rollout: a.flags["rollout"], Time: d.now}
	if ids, ok := a.opts["inplace"]; ok {
		r.InPlace = strings.Split(ids, ",")
	}
	return r
}

// answer renders an apply response.
func answer(resp any) []string {
	switch r := resp.(type) {
	case nil:
		return []string{"ok"}
	case error:
		return []string{"error: " + r.Error()}
	case *RegisterJobResponse:
		if r.Existing {
			return []string{"existing " + r.ID}
		}
		return []string{"ok"}
	case *GCJobsResponse:
		return []string{fmt.Sprintf("gc: %d jobs, %d allocations", r.Jobs, r.Allocs)}
	case *ApplyPlanResponse:
		var out []string
		if len(r.Placed) > 0 {
			out = append(out, "placed "+strings.Join(r.Placed, ", "))
		}
		for _, id := range sortedKeys(r.Preempted) {
			out = append(out, fmt.Sprintf("preempted for %s: %s", id, strings.Join(r.Preempted[id], ", ")))
		}
		for _, id := range sortedKeys(r.Rejected) {
			out = append(out, fmt.Sprintf("rejected %s: %s", id, r.Rejected[id]))
		}
		if len(out) == 0 {
			out = []string{"ok"}
		}
		return out
	}
	return []string{fmt.Sprintf("%T %v", resp, resp)}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// rendered is every object of a snapshot, by kind and ID, as it prints,
// with the index it was last written at.
type rendered struct {
	order []string
	lines map[string]string
	index map[string]uint64
}

func renderAll(s *Snapshot) rendered {
	r := rendered{lines: map[string]string{}, index: map[string]uint64{}}
	put := func(key, line string, idx uint64) {
		r.order = append(r.order, key)
		r.lines[key], r.index[key] = line, idx
	}
	for _, n := range s.Nodes(nil) {
		put("node "+n.Name, nodeLine(n), n.ModifyIndex)
	}
	for _, j := range s.Jobs(nil) {
		put("job "+j.ID, jobLine(j), j.ModifyIndex)
	}
	for _, a := range s.Allocs(nil) {
		put("alloc "+a.ID, allocLine(a), a.ModifyIndex)
	}
	return r
}

func (d *driver) render(s *Snapshot) []string {
	r := renderAll(s)
	out := []string{}
	for _, k := range r.order {
		out = append(out, r.lines[k])
	}
	if len(out) == 0 {
		out = append(out, "empty")
	}
	return out
}

// changes lists the objects written at this index or changed since
// before, and those removed.
func (d *driver) changes(before, after *Snapshot) []string {
	b, a := renderAll(before), renderAll(after)
	var out []string
	for _, k := range a.order {
		if a.index[k] == d.index || a.lines[k] != b.lines[k] {
			out = append(out, a.lines[k])
		}
	}
	for _, k := range b.order {
		if _, ok := a.lines[k]; !ok {
			out = append(out, "gone "+k)
		}
	}
	return out
}

func since(t time.Time) string { return "+" + t.Sub(t0).String() }

// val renders a free-text value, quoted when it has spaces.
func val(s string) string {
	if strings.ContainsAny(s, " \"") {
		return strconv.Quote(s)
	}
	return s
}

func nodeLine(n *api.Node) string {
	s := fmt.Sprintf("node %s %s gpus=%d", n.Name, n.Status, len(n.GPUs))
	if n.ID != "id-"+n.Name {
		s += " id=" + n.ID
	}
	if n.Ineligible {
		s += " ineligible"
	}
	if n.Drain != nil {
		s += " drain=" + since(n.Drain.Deadline)
	}
	if n.StatusInfo != "" {
		s += " info=" + val(n.StatusInfo)
	}
	return s
}

func jobLine(j *api.Job) string {
	s := fmt.Sprintf("job %s %s prio=%d", j.ID, j.Status, j.Priority)
	for _, f := range []struct {
		k string
		v int
	}{{"attempt", j.RestartCount}, {"migrations", j.Migrations}, {"preemptions", j.Preemptions}} {
		if f.v != 0 {
			s += fmt.Sprintf(" %s=%d", f.k, f.v)
		}
	}
	if j.StartTime != nil {
		s += " start=" + since(*j.StartTime)
	}
	if j.EndTime != nil {
		s += " end=" + since(*j.EndTime)
	}
	if j.RestartAfter != nil {
		s += " after=" + since(*j.RestartAfter)
	}
	if len(j.Preempting) > 0 {
		s += " preempting=" + strings.Join(j.Preempting, ",")
	}
	if len(j.HeldNodes) > 0 {
		s += " held=" + strings.Join(j.HeldNodes, ",")
	}
	if j.HoldUntil != nil {
		s += " until=" + since(*j.HoldUntil)
	}
	if j.Reason != "" {
		s += " reason=" + val(j.Reason)
	}
	if j.LastPreemption != "" && j.LastPreemption != j.Reason {
		s += " last-preemption=" + val(j.LastPreemption)
	}
	if j.Version > 0 {
		s += fmt.Sprintf(" version=%d stable=%d", j.Version, j.StableVersion)
	}
	if dp := j.Deployment; dp != nil {
		s += fmt.Sprintf(" deploy=%d:%s", dp.Version, dp.Status)
		if !dp.Promoted {
			s += ":canary"
		}
		if dp.RevertOf > 0 {
			s += fmt.Sprintf(":revert-of-%d", dp.RevertOf)
		}
		if dp.Message != "" {
			s += " deploy-msg=" + val(dp.Message)
		}
	}
	for _, r := range j.ServiceReplicas {
		s += fmt.Sprintf(" replica=%d:restarts=%d,streak=%d", r.Rank, r.Restarts, r.Streak)
		if r.RestartAfter != nil {
			s += ",after=" + since(*r.RestartAfter)
		}
		if r.LastExitCode != nil {
			s += fmt.Sprintf(",exit=%d", *r.LastExitCode)
		}
		if r.LastSignal != "" {
			s += ",signal=" + r.LastSignal
		}
	}
	return s
}

func allocLine(a *api.Allocation) string {
	gpus := make([]string, len(a.GPUs))
	for i, g := range a.GPUs {
		gpus[i] = strconv.Itoa(g)
	}
	s := fmt.Sprintf("alloc %s %s[%s]", a.ID, a.Node, strings.Join(gpus, ","))
	if a.GPUMilli > 0 {
		s += fmt.Sprintf("@%d", a.GPUMilli)
	}
	if a.GPUMemoryBytes > 0 {
		s += "/" + spec.FormatBytes(a.GPUMemoryBytes)
	}
	s += fmt.Sprintf(" attempt=%d %s/%s", a.Attempt, a.Status, a.DesiredStatus)
	if a.JobVersion > 0 {
		s += fmt.Sprintf(" v=%d", a.JobVersion)
	}
	if a.StopCause != "" {
		s += " cause=" + a.StopCause
	}
	if a.StartTime != nil {
		s += " start=" + since(*a.StartTime)
	}
	if a.FinishTime != nil {
		s += " end=" + since(*a.FinishTime)
	}
	if a.ExitCode != nil {
		s += fmt.Sprintf(" exit=%d", *a.ExitCode)
	}
	if a.Signal != "" {
		s += " signal=" + a.Signal
	}
	if a.Message != "" {
		s += " msg=" + val(a.Message)
	}
	if a.Ready {
		s += " ready"
		if a.ReadySince != nil {
			s += "=" + since(*a.ReadySince)
		}
	}
	return s
}
