package sched

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// update commits a new spec for a service as the leader's update handler
// does: the replicas the change leaves alone keep serving in place.
func (c *cluster) update(id string, edit func(*spec.Job)) {
	c.t.Helper()
	j := c.job(id)
	ns := j.Spec
	ns.Update = nil
	if j.Spec.Update != nil {
		u := *j.Spec.Update
		ns.Update = &u
	}
	if e := j.Spec.Task.Exec; e != nil { // the stored spec is shared: edit a copy
		ce := *e
		ce.Command = append([]string(nil), e.Command...)
		ns.Task.Exec = &ce
	}
	edit(&ns)
	req := state.UpdateJobRequest{JobID: id, Spec: ns, Version: j.Version, Time: c.now}
	for _, a := range c.snap().AllocsByJob(nil, id) {
		if !a.Serving() {
			continue
		}
		old := c.snap().JobVersion(id, a.JobVersion)
		if old == nil || ReplicaChanged(&old.Spec, &ns, "") {
			req.Rollout = true
		} else {
			req.InPlace = append(req.InPlace, a.ID)
		}
	}
	if err, ok := c.apply(state.UpdateJobType, req).(error); ok {
		c.t.Fatalf("update %s: %v", id, err)
	}
}

// healthChecks reports every running replica that is not yet ready as
// ready, as its agent's health check does.
func (c *cluster) healthChecks() {
	ready := true
	for _, a := range c.snap().Allocs(nil) {
		if a.Status == api.AllocRunning && a.DesiredStatus == api.DesiredRun && !a.Ready {
			c.apply(state.AllocStatusType, state.AllocStatusRequest{AllocID: a.ID, Update: api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}, Time: c.now})
		}
	}
}

// byRank returns the serving allocations of a job by rank, and fails
// when a rank has none (the service would be down a replica).
func (c *cluster) byRank(id string) map[int][]*api.Allocation {
	c.t.Helper()
	out := map[int][]*api.Allocation{}
	for _, a := range c.snap().AllocsByJob(nil, id) {
		if a.Serving() {
			out[a.Rank] = append(out[a.Rank], a)
		}
	}
	for r := range c.job(id).Spec.Replicas {
		if len(out[r]) == 0 {
			c.t.Fatalf("rank %d of %s has no serving replica", r, id)
		}
	}
	return out
}

// roll advances time a second at a time, with passes, agents and health
// checks, until the job's deployment ends or limit passes; at every step
// each rank keeps a serving replica and at most max ranks have two.
func (c *cluster) roll(id string, limit time.Duration, maxSurge int) *api.Deployment {
	c.t.Helper()
	for end := c.now.Add(limit); c.now.Before(end); c.now = c.now.Add(time.Second) {
		c.pass()
		c.agents()
		c.healthChecks()
		surge := 0
		for _, as := range c.byRank(id) {
			if len(as) > 1 {
				surge++
			}
		}
		if surge > maxSurge {
			c.t.Fatalf("%d ranks have a second replica at once, the strategy allows %d", surge, maxSurge)
		}
		if d := c.job(id).Deployment; d == nil {
			c.t.Fatalf("%s has no rollout", id)
		} else if !d.Active() {
			return d
		}
	}
	c.t.Fatalf("rollout of %s still running after %s: %+v", id, limit, c.job(id).Deployment)
	return nil
}

// TestRollingUpdate drives the shipped pass over a real FSM through a
// rolling update of a 3-replica service: one rank at a time gets a new
// replica next to the old one, the old one stops only after the new one
// has been ready minHealthyTime, every rank serves throughout, and the
// rollout ends successful with every replica at the new version.
func TestRollingUpdate(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 4)
	c.node("b", 4)
	c.service("svc", 3, 1, 10)
	c.settle(5)
	c.healthChecks()
	before := c.byRank("svc")

	// A change of priority alone is applied in place: no rollout.
	c.update("svc", func(s *spec.Job) { s.Priority = 20 })
	if j := c.job("svc"); j.Deployment != nil || j.Version != 1 || j.StableVersion != 1 {
		t.Fatalf("in-place update: version %d stable %d deployment %+v", j.Version, j.StableVersion, j.Deployment)
	}
	for r, as := range c.byRank("svc") {
		if as[0].ID != before[r][0].ID || as[0].JobVersion != 1 {
			t.Fatalf("rank %d: %s at version %d after an in-place update, want %s at 1", r, as[0].ID, as[0].JobVersion, before[r][0].ID)
		}
	}

	// A new command is a rollout, one rank at a time, healthy 5s.
	c.update("svc", func(s *spec.Job) {
		s.Task.Exec.Command = []string{"serve", "--v2"}
		s.Update = &spec.Update{MaxParallel: 1, MinHealthyTime: spec.Duration(5 * time.Second), ProgressDeadline: spec.Duration(time.Minute)}
	})
	start := c.now
	d := c.roll("svc", 2*time.Minute, 1)
	if d.Status != api.DeploymentSuccessful {
		t.Fatalf("rollout ended %s: %s", d.Status, d.Message)
	}
	// Three ranks one after the other, each healthy 5s: at least 15s.
	if took := c.now.Sub(start); took < 15*time.Second {
		t.Fatalf("rollout took %s: the minimum healthy time was not waited", took)
	}
	for r, as := range c.byRank("svc") {
		if len(as) != 1 || as[0].JobVersion != 2 || as[0].Task.Exec.Command[1] != "--v2" {
			t.Fatalf("rank %d after the rollout: %d replicas, version %d", r, len(as), as[0].JobVersion)
		}
	}
	if j := c.job("svc"); j.StableVersion != 2 {
		t.Fatalf("stable version %d after a successful rollout, want 2", j.StableVersion)
	}
	for _, a := range c.snap().AllocsByJob(nil, "svc") {
		if a.JobVersion < 2 && a.Status != api.AllocStopped {
			t.Fatalf("old replica %s ended %s, want stopped", a.ID, a.Status)
		}
	}
}

// TestRolloutCanaryAndRevert: a canary waits for its promotion (no other
// rank moves), then the rest rolls out two at a time; a later version
// whose new replica crashes fails and, with autoRevert, goes back to the
// stable version without touching the replicas that run it.
func TestRolloutCanaryAndRevert(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 4)
	c.node("b", 4)
	c.service("svc", 4, 1, 10)
	c.settle(5)
	c.healthChecks()

	c.update("svc", func(s *spec.Job) {
		s.Task.Exec.Command = []string{"serve", "--v1"}
		s.Update = &spec.Update{MaxParallel: 2, MinHealthyTime: spec.Duration(2 * time.Second), ProgressDeadline: spec.Duration(time.Minute), Canary: 1}
	})
	for range 20 {
		c.pass()
		c.agents()
		c.healthChecks()
		c.now = c.now.Add(time.Second)
	}
	d := c.job("svc").Deployment
	newOnes := 0
	for _, as := range c.byRank("svc") {
		for _, a := range as {
			if a.JobVersion == 1 {
				newOnes++
			}
		}
	}
	if !d.Active() || d.Promoted || newOnes != 1 || !strings.Contains(d.Message, "ark job promote") {
		t.Fatalf("before promotion: deployment %+v, %d new replicas; want 1 canary waiting", d, newOnes)
	}
	if err, ok := c.apply(state.PromoteJobType, state.PromoteJobRequest{JobID: "svc", Version: 1, Time: c.now}).(error); ok {
		t.Fatal(err)
	}
	if d := c.roll("svc", time.Minute, 2); d.Status != api.DeploymentSuccessful {
		t.Fatalf("rollout after promotion ended %s: %s", d.Status, d.Message)
	}
	stable := c.byRank("svc")

	// Version 2 crashes on start: its rollout fails and reverts.
	c.update("svc", func(s *spec.Job) {
		s.Task.Exec.Command = []string{"serve", "--broken"}
		s.Update = &spec.Update{MaxParallel: 1, MinHealthyTime: spec.Duration(2 * time.Second), ProgressDeadline: spec.Duration(time.Minute), AutoRevert: true}
	})
	c.pass() // places rank 0's new replica
	var crashed *api.Allocation
	for _, a := range c.snap().AllocsByJob(nil, "svc") {
		if a.JobVersion == 2 && a.Serving() {
			crashed = a
		}
	}
	if crashed == nil {
		t.Fatal("no replica of version 2 was placed")
	}
	code := 1
	c.apply(state.AllocStatusType, state.AllocStatusRequest{AllocID: crashed.ID, Update: api.AllocStatusUpdate{Status: api.AllocFailed, ExitCode: &code}, Time: c.now})
	j := c.job("svc")
	if j.Version != 3 || j.Deployment.RevertOf != 2 || j.Spec.Task.Exec.Command[1] != "--v1" {
		t.Fatalf("after the crash: version %d, deployment %+v, command %v; want version 3 reverting 2 to --v1", j.Version, j.Deployment, j.Spec.Task.Exec.Command)
	}
	if d := c.roll("svc", time.Minute, 1); d.Status != api.DeploymentSuccessful {
		t.Fatalf("revert ended %s: %s", d.Status, d.Message)
	}
	for r, as := range c.byRank("svc") {
		if len(as) != 1 || as[0].ID != stable[r][0].ID {
			t.Fatalf("rank %d: the revert replaced %s (stable replicas take the reverted version in place)", r, stable[r][0].ID)
		}
	}
	vs := c.snap().JobVersions(nil, "svc")
	if len(vs) != 4 || vs[2].Status != api.DeploymentFailed || !vs[1].Stable || !vs[3].Stable {
		t.Fatalf("versions: %+v", vs)
	}
}

// TestRolloutProgressDeadline: new replicas that never pass their
// health check fail the rollout at its deadline, and the old replicas
// keep serving.
func TestRolloutProgressDeadline(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 4)
	c.service("svc", 2, 1, 10)
	c.settle(5)
	c.healthChecks()
	c.update("svc", func(s *spec.Job) {
		s.Task.Exec.Command = []string{"serve", "--hangs"}
		s.Update = &spec.Update{MaxParallel: 1, MinHealthyTime: spec.Duration(time.Second), ProgressDeadline: spec.Duration(30 * time.Second)}
	})
	var d *api.Deployment
	for end := c.now.Add(time.Minute); c.now.Before(end); c.now = c.now.Add(time.Second) {
		c.pass()
		c.agents() // running, never ready
		c.byRank("svc")
		if d = c.job("svc").Deployment; !d.Active() {
			break
		}
	}
	if d.Status != api.DeploymentFailed || !strings.Contains(d.Message, "progress deadline") {
		t.Fatalf("deployment %+v, want failed at its progress deadline", d)
	}
	for r, as := range c.byRank("svc") {
		old := 0
		for _, a := range as {
			if a.JobVersion == 0 && a.Ready {
				old++
			}
		}
		if old != 1 {
			t.Fatalf("rank %d: %d ready old replicas after the failed rollout, want 1", r, old)
		}
	}
}

// TestReplicaChanged: what a running replica cannot take in place needs a
// rollout; the rest (count, priority, strategy, a builtin server's rules
// and adapters it may read) does not. An adapter whose local checkpoint
// lies outside every path the replica's sandbox opened at its start
// (spec.ReadRoots: the base /m/base/b opens /m, the adapter
// /st/legal/1 opens /st) is a rollout that names the new path; one in an
// object store never is.
func TestReplicaChanged(t *testing.T) {
	base := func() *spec.Job {
		return &spec.Job{Name: "s", Kind: spec.KindInference, Replicas: 2, Priority: 50,
			Resources: spec.Resources{GPUs: 1, CPU: "1", Memory: "1Gi"},
			Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///m/base/b",
				Adapters: []spec.Adapter{{Name: "legal", URI: "file:///st/legal/1"}},
				Rules:    []spec.Rule{{ID: "r", On: spec.RuleInput, Keywords: []string{"x"}, Action: spec.RuleBlock}}}}}
	}
	add := func(uri string) func(*spec.Job) {
		return func(j *spec.Job) {
			j.Task.Builtin.Adapters = append(j.Task.Builtin.Adapters, spec.Adapter{Name: "a", URI: uri})
		}
	}
	cases := []struct {
		name     string
		edit     func(*spec.Job)
		want     bool
		newRoots []string
	}{
		{"nothing", func(*spec.Job) {}, false, nil},
		{"replicas", func(j *spec.Job) { j.Replicas = 5 }, false, nil},
		{"priority", func(j *spec.Job) { j.Priority = 90 }, false, nil},
		{"strategy", func(j *spec.Job) { j.Update = &spec.Update{MaxParallel: 3} }, false, nil},
		{"autoscale", func(j *spec.Job) { j.Autoscale = &spec.Autoscale{Max: 4} }, false, nil},
		{"rules", func(j *spec.Job) { j.Task.Builtin.Rules = nil }, false, nil},
		{"base", func(j *spec.Job) { j.Task.Builtin.Base = "file:///m/base/b2" }, true, nil},
		{"adapter added from the same store", add("file:///st/a/2"), false, nil},
		{"adapter added as a bare path below the store", add("/st/x/a"), false, nil},
		{"adapter added as a job of the store (STORE/JOB): read through the store", add("/st/a"), false, nil},
		{"adapter added in a store beside the base's", add("file:///m/x/a/3"), true, []string{"/m/x"}},
		{"adapter added from a new file:// store", add("file:///new/a/3"), true, []string{"/new"}},
		{"adapter added from a sibling of the store", add("file:///st2/a/3"), true, []string{"/st2"}},
		{"adapter added from s3", add("s3://bucket/a/3"), false, nil},
		{"adapter added from a file:// URI of another host", add("file://elsewhere/new/a/3"), false, nil},
		{"adapter removed", func(j *spec.Job) { j.Task.Builtin.Adapters = nil }, false, nil},
		{"adapter moved in its store", func(j *spec.Job) { j.Task.Builtin.Adapters[0].URI = "file:///st/legal2/1" }, false, nil},
		{"adapter moved to a new store", func(j *spec.Job) { j.Task.Builtin.Adapters[0].URI = "file:///st3/legal/1" }, true, []string{"/st3"}},
		{"adapter pinned", func(j *spec.Job) { j.Task.Builtin.Adapters[0].Pinned = true }, false, nil},
		{"adapters and base", func(j *spec.Job) { j.Task.Builtin.Adapters, j.Task.Builtin.Base = nil, "file:///m/base/b2" }, true, nil},
		{"model", func(j *spec.Job) { j.Task.Builtin.Model = "gpt-small" }, true, nil},
		{"gpus", func(j *spec.Job) { j.Resources.GPUs = 2 }, true, nil},
		{"health", func(j *spec.Job) { j.Task.Health = &spec.Health{TCP: &spec.TCPCheck{}} }, true, nil},
	}
	for _, tc := range cases {
		a, b := base(), base()
		tc.edit(b)
		if got := ReplicaChanged(a, b, ""); got != tc.want {
			t.Errorf("%s: ReplicaChanged = %v, want %v", tc.name, got, tc.want)
		}
		if got := NewReadRoots(a, b, ""); !slices.Equal(got, tc.newRoots) {
			t.Errorf("%s: NewReadRoots = %q, want %q", tc.name, got, tc.newRoots)
		}
		if a.Task.Builtin.Rules == nil || a.Task.Builtin.Adapters == nil {
			t.Fatalf("%s: ReplicaChanged changed its argument", tc.name)
		}
	}
	// An exec service reads no spec path: nothing to compare.
	e := &spec.Job{Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"serve"}}}}
	if got := NewReadRoots(e, e, ""); got != nil {
		t.Errorf("exec service: NewReadRoots = %q, want none", got)
	}
}

// TestRolloutStopFirst: on a node with no spare GPU a surge rollout
// cannot start, and a stop-first one replaces the replicas one at a
// time: never more than maxParallel ranks unserved, ending successful.
func TestRolloutStopFirst(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 2)
	c.service("svc", 2, 1, 10)
	c.settle(5)
	c.healthChecks()
	c.update("svc", func(s *spec.Job) {
		s.Task.Exec.Command = []string{"serve", "--v1"}
		s.Update = &spec.Update{MaxParallel: 1, MinHealthyTime: spec.Duration(2 * time.Second), ProgressDeadline: spec.Duration(time.Minute), StopFirst: true}
	})
	for end := c.now.Add(time.Minute); c.now.Before(end); c.now = c.now.Add(time.Second) {
		c.pass()
		c.agents()
		c.healthChecks()
		unserved := 0
		served := map[int]bool{}
		for _, a := range c.snap().AllocsByJob(nil, "svc") {
			if a.Serving() {
				served[a.Rank] = true
			}
		}
		for r := range 2 {
			if !served[r] {
				unserved++
			}
		}
		if unserved > 1 {
			t.Fatalf("%d ranks unserved at once, maxParallel is 1", unserved)
		}
		if d := c.job("svc").Deployment; !d.Active() {
			break
		}
	}
	if d := c.job("svc").Deployment; d.Status != api.DeploymentSuccessful {
		t.Fatalf("stop-first rollout: %+v", d)
	}
	for r, as := range c.byRank("svc") {
		if len(as) != 1 || as[0].JobVersion != 1 {
			t.Fatalf("rank %d after the rollout: %d replicas at version %d", r, len(as), as[0].JobVersion)
		}
	}
}

// TestReplicaChangedClusterStore: in the cluster's own checkpoint store a
// replica reads its namespace's directory, never the store above it (the
// driver's rule, spec.ReadRoots), so an adapter of another namespace's
// directory rolls the replicas (and the storage policy decides whether it
// may be read at all), while one of its own namespace applies in place.
func TestReplicaChangedClusterStore(t *testing.T) {
	svc := func(adapter string) *spec.Job {
		j := &spec.Job{Name: "s", Kind: spec.KindInference, Replicas: 1, Resources: spec.Resources{GPUs: 1},
			Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///ckpt/nlp/ft/000000000050"}}}
		if adapter != "" {
			j.Task.Builtin.Adapters = []spec.Adapter{{Name: "a", URI: adapter}}
		}
		return j
	}
	cases := []struct {
		adapter  string
		newRoots []string
	}{
		{"file:///ckpt/nlp/ft2/000000000010", nil},
		{"file:///ckpt/nlp/7", nil},
		{"file:///ckpt/cv/9/000000000010", []string{"/ckpt/cv"}},
		{"file:///ckpt/cv/9", []string{"/ckpt/cv/9"}},
	}
	for _, tc := range cases {
		got := NewReadRoots(svc(""), svc(tc.adapter), "/ckpt")
		if !slices.Equal(got, tc.newRoots) {
			t.Errorf("%s: NewReadRoots = %q, want %q", tc.adapter, got, tc.newRoots)
		}
		if changed := ReplicaChanged(svc(""), svc(tc.adapter), "/ckpt"); changed != (tc.newRoots != nil) {
			t.Errorf("%s: ReplicaChanged = %v", tc.adapter, changed)
		}
	}
}
