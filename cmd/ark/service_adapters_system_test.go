package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/train"
)

// TestSystemServiceAdaptersInPlace: an adapter added to a running builtin
// service with ark job adapter add (servers without a cluster key) is a
// new version of its spec applied in place: the replicas keep their
// allocations and load it within seconds; a replica started after the
// add (its process killed, its replacement a new allocation) serves it
// from its spec; ark job adapter rm drops it everywhere, again in place.
// An adapter whose checkpoint lies where the replicas' sandboxes do not
// reach rolls them instead, without a failed call, and is served after.
// The add waits until both replicas loaded it. An adapter that is not of
// the base (trained on another gpt-tiny, or a full checkpoint) makes the
// add print each replica's reason, remove it again (unless --keep) and
// exit 1. A process of the node (loopback) cannot manage a replica's
// adapters.
func TestSystemServiceAdaptersInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	cpuHeavy(t) // serves a model
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a", "b", "c"})
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	// Two adapters of the base in a local store. A replica reads local
	// paths its sandbox allowed at its start: the spec's adapter bard
	// opens the store's directory to it (spec.ReadRoots), so legal,
	// added at run time from the same store, is readable too and added
	// in place.
	store := filepath.Join(t.TempDir(), "store")
	names, err := writeBenchAdapters(ctx, store, base, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	// quill: an adapter of the same shape trained on another base (a
	// gpt-tiny of other weights), in a store beside the first.
	quill, baseB := foreignAdapter(t, filepath.Join(store, "foreign"))
	openToTaskUser(store)
	bard, adapter := "file://"+filepath.Join(store, names[0]), "file://"+filepath.Join(store, names[1])
	id := submitSpec(t, s.http, "name: multi\nkind: inference\nreplicas: 2\nresources: {gpus: 1, cpu: 500m, memory: 256Mi}\nrestart: {backoff: 1s}\n"+
		"update: {minHealthyTime: 1s}\n"+
		"task: {driver: builtin, builtin: {model: gpt-tiny, base: "+base+", adapters: [{name: bard, uri: \""+bard+"\"}]}}\n")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := cli(t, s.http, "job", "logs", id)
			t.Logf("replica logs:\n%s", logs)
			if j, _, err := c.Job(ctx, id, 0, 0); err == nil {
				for _, a := range j.Allocations {
					ep, _ := strings.CutPrefix(a.Progress, "serving on ")
					var list []byte
					if r, err := http.Get(ep + "/v1/adapters"); err == nil {
						list, _ = io.ReadAll(r.Body)
						r.Body.Close()
					}
					t.Logf("replica %s version %d %s: adapters %s", a.ID, a.JobVersion, a.Status, list)
				}
			}
		}
	})
	serving := func() *api.Job {
		t.Helper()
		var j *api.Job
		waitUntil(t, 90*time.Second, "2 ready replicas", func() bool {
			j, _, err = c.Job(ctx, id, 0, 0)
			if err != nil {
				return false
			}
			n := 0
			for _, a := range j.Allocations {
				if a.Serving() && a.Ready && strings.HasPrefix(a.Progress, "serving on ") {
					n++
				}
			}
			return n == 2
		})
		return j
	}
	replicas := func(j *api.Job) (out []*api.Allocation) {
		for _, a := range j.Allocations {
			if a.Serving() {
				out = append(out, a)
			}
		}
		return out
	}
	// ask asks one replica directly for a completion of model.
	ask := func(a *api.Allocation, model string) int {
		ep, _ := strings.CutPrefix(a.Progress, "serving on ")
		body := fmt.Sprintf(`{"model":%q,"prompt":"ROMEO:","max_tokens":4,"temperature":0}`, model)
		resp, err := http.Post(ep+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	before := replicas(serving())
	ids := func(as []*api.Allocation) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.ID
		}
		slices.Sort(out)
		return out
	}
	// A process of the node: no token, no adapter.
	ep, _ := strings.CutPrefix(before[0].Progress, "serving on ")
	resp, err := http.Post(ep+"/v1/adapters", "application/json", strings.NewReader(`{"name":"x","uri":"`+adapter+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a local caller loads an adapter into a replica: %s, want 401", resp.Status)
	}

	waitUntil(t, 30*time.Second, "bard served by both replicas", func() bool {
		return ask(before[0], "bard") == 200 && ask(before[1], "bard") == 200
	})
	if a, b := ask(before[0], "legal"), ask(before[1], "legal"); a != 404 || b != 404 {
		t.Fatalf("legal before the add: %d %d, want 404", a, b)
	}
	added := time.Now()
	out, err := cli(t, s.http, "job", "adapter", "add", id, "legal", adapter)
	if err != nil || !strings.Contains(out, "adapter legal added from "+adapter+": version 1, applied in place on 2 replicas") ||
		!strings.Contains(out, "adapter legal: loaded on 2/2 replicas") {
		t.Fatalf("job adapter add: %v %q", err, out)
	}
	returned := time.Since(added)
	// The add waited for both replicas' verdict: they serve it now.
	if a, b := ask(before[0], "legal"), ask(before[1], "legal"); a != 200 || b != 200 {
		t.Fatalf("legal after the add returned: %d %d, want 200 from both", a, b)
	}
	t.Logf("FIGURE adapter added in place: ark job adapter add returned after %s, with legal loaded on both replicas (agents polled every 2s)", returned.Round(10*time.Millisecond))
	after := replicas(serving())
	if !slices.Equal(ids(before), ids(after)) {
		t.Fatalf("the add replaced replicas: %v -> %v", ids(before), ids(after))
	}
	for _, a := range after {
		if a.JobVersion != 1 {
			t.Errorf("replica %s at version %d after the add, want 1 (in place)", a.ID, a.JobVersion)
		}
	}
	if out, err := cli(t, s.http, "job", "adapter", "add", id, "legal", adapter); err != nil || !strings.Contains(out, "already in version 1") {
		t.Errorf("the same add again: %v %q", err, out)
	}
	// list: one row per replica, each holding legal in a tier it serves from.
	if out, err := cli(t, s.http, "job", "adapter", "list", id); err != nil || strings.Count(out, " legal ") != 2 || strings.Contains(out, "failed") || strings.Contains(out, "unknown") {
		t.Errorf("job adapter list: %v\n%s", err, out)
	} else {
		for _, a := range after {
			if !strings.Contains(out, a.ID) {
				t.Errorf("job adapter list names no row of replica %s:\n%s", a.ID, out)
			}
		}
	}

	// A replica started after the add: kill one's process; its
	// replacement serves legal from its spec.
	victim := after[0]
	pid := builtinReplicaPID(t, victim.ID)
	if err := exec.Command("kill", "-9", strconv.Itoa(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	var fresh *api.Allocation
	waitUntil(t, 90*time.Second, "a replacement replica ready", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return false
		}
		fresh = nil
		ready := 0
		for _, a := range replicas(j) {
			if a.Ready && strings.HasPrefix(a.Progress, "serving on ") {
				ready++
				if a.ID != after[0].ID && a.ID != after[1].ID {
					fresh = a
				}
			}
		}
		return ready == 2 && fresh != nil
	})
	waitUntil(t, 30*time.Second, "legal served by the new replica", func() bool { return ask(fresh, "legal") == 200 })
	if code := ask(fresh, "gpt-tiny"); code != 200 {
		t.Errorf("the base on the new replica: %d", code)
	}

	out, err = cli(t, s.http, "job", "adapter", "rm", id, "legal")
	if err != nil || !strings.Contains(out, "adapter legal removed: version 2, applied in place on 2 replicas") {
		t.Fatalf("job adapter rm: %v %q", err, out)
	}
	waitUntil(t, 30*time.Second, "legal gone from both replicas", func() bool {
		return ask(fresh, "legal") == 404 && ask(after[1], "legal") == 404
	})
	final := replicas(serving())
	if want := ids([]*api.Allocation{fresh, after[1]}); !slices.Equal(ids(final), want) {
		t.Errorf("the rm replaced replicas: %v, want %v", ids(final), want)
	}
	// Adapters that are not of this base: the add waits for the
	// replicas' verdict, prints each one's error, takes the adapter out
	// again (a second update) and exits 1; with --keep it stays in the
	// spec. The replicas go on serving.
	wrong := []struct {
		name, uri string
		keep      bool
		reason    string
	}{
		{"quill", quill, false, "not an adapter of this base: trained on base " + baseB + " (parameters sha256 "},
		{"whole", "file://" + base, true, "is not a LoRA adapter (its manifest records no adapter: a full model checkpoint?)"},
	}
	for _, w := range wrong {
		args := []string{"job", "adapter", "add", id, w.name, w.uri}
		if w.keep {
			args = append(args, "--keep")
		}
		began := time.Now()
		out, err := cli(t, s.http, args...)
		took := time.Since(began)
		wantTail := "adapter " + w.name + " removed again: version "
		if w.keep {
			wantTail = "adapter " + w.name + " kept in the spec (--keep)"
		}
		if exitCodeOf(err) != 1 || !strings.Contains(out, "adapter "+w.name+": failed on 2/2 replicas (loaded on 0)") ||
			strings.Count(out, w.reason) != 2 || !strings.Contains(out, wantTail) {
			t.Errorf("add %s (%s): %v\n%s\nwant exit 1, failed on 2/2 replicas, twice %q, and %q", w.name, w.uri, err, out, w.reason, wantTail)
		}
		t.Logf("FIGURE ark job adapter add %s (not of this base) exited %d after %s:\n%s", w.name, exitCodeOf(err), took.Round(10*time.Millisecond), out)
	}
	j, _, err := c.Job(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for _, a := range j.Spec.Task.Builtin.Adapters {
		inSpec = append(inSpec, a.Name)
	}
	if !slices.Equal(inSpec, []string{"bard", "whole"}) {
		t.Errorf("adapters in the spec after the failed adds: %v, want [bard whole] (quill removed again, whole kept)", inSpec)
	}
	if out, err := cli(t, s.http, "job", "adapter", "rm", id, "whole"); err != nil {
		t.Errorf("rm whole: %v %q", err, out)
	}
	if a, b := ask(fresh, "bard"), ask(after[1], "bard"); a != 200 || b != 200 {
		t.Errorf("bard after the failed adds: %d %d, want 200", a, b)
	}

	// An adapter in a directory no replica's sandbox opened (a store of
	// its own, beside none of the spec's): the running replicas could
	// not read it, so the add rolls them. New replicas start with it;
	// the service answers all along; the add waits until they serve it.
	store2 := filepath.Join(t.TempDir(), "store2")
	names2, err := writeBenchAdapters(ctx, store2, base, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	openToTaskUser(store2)
	far := "file://" + filepath.Join(store2, names2[0])
	prior := replicas(serving())
	cur, _, err := c.Job(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Version + 1
	endpoint := "http://" + s.http + "/v1/services/" + id + "/v1/completions"
	calls, failed := 0, []string{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			calls++
			resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"model":"gpt-tiny","prompt":"ROMEO:","max_tokens":2,"temperature":0}`))
			if err != nil {
				failed = append(failed, err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed = append(failed, fmt.Sprintf("%d %s", resp.StatusCode, body))
			}
		}
	}()
	began := time.Now()
	out, err = cli(t, s.http, "job", "adapter", "add", id, "far", far, "--timeout", "3m")
	rolled := time.Since(began)
	close(stop)
	<-done
	wantRoll := "adapter far added from " + far + ": version " + strconv.Itoa(next) + ", rolling the replicas: the adapter's directory " + store2 + " is new to them"
	if err != nil || !strings.Contains(out, wantRoll) || !strings.Contains(out, "adapter far: loaded on 2/2 replicas") {
		t.Fatalf("add far: %v\n%s\nwant %q and loaded on 2/2", err, out, wantRoll)
	}
	if len(failed) > 0 {
		t.Errorf("the service failed %d of %d calls during the roll: %q", len(failed), calls, failed[:min(3, len(failed))])
	}
	t.Logf("FIGURE adapter in a new directory: ark job adapter add rolled 2 replicas (minHealthyTime 1s) and returned after %s with far loaded on both; %d calls to the service meanwhile, %d failed",
		rolled.Round(10*time.Millisecond), calls, len(failed))
	rolledTo := replicas(serving())
	for _, a := range rolledTo {
		if slices.Contains(ids(prior), a.ID) || a.JobVersion != next {
			t.Errorf("replica %s at version %d after the roll, want a new replica at version %d (before: %v)", a.ID, a.JobVersion, next, ids(prior))
		}
		if f, b := ask(a, "far"), ask(a, "bard"); f != 200 || b != 200 {
			t.Errorf("replica %s after the roll: far %d, bard %d, want 200", a.ID, f, b)
		}
	}

	hist, err := cli(t, s.http, "job", "history", id)
	if err != nil || strings.Count(hist, "\n") < 3 {
		t.Errorf("job history: %v\n%s", err, hist)
	}
	if _, err := cli(t, s.http, "job", "cancel", id); err != nil {
		t.Fatal(err)
	}
}

// openToTaskUser lets the task user read store: the replicas run as it,
// and the test's directories are 0700.
func openToTaskUser(store string) {
	for p := filepath.Dir(store); strings.HasPrefix(p, os.TempDir()+"/"); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	_ = filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			err = os.Chmod(p, mode)
		}
		return err
	})
}

// builtinReplicaPID is the process of allocation id's builtin server
// (ark task serve).
func builtinReplicaPID(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(env, []byte("ARK_ALLOC_ID="+id+"\x00")) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		if !bytes.Contains(cmdline, []byte("task\x00serve\x00")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return pid
	}
	t.Fatalf("no process serves allocation %s", id)
	return 0
}

// foreignAdapter writes, under dir, a gpt-tiny base of seeded random
// weights and a LoRA adapter trained on it (writeBenchAdapters), and
// returns the URIs of the adapter and its base: an adapter the same shape
// as any gpt-tiny's, of no other gpt-tiny.
func foreignAdapter(t *testing.T, dir string) (adapter, base string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := train.Preset("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	params := make([]float32, cfg.NumParams())
	for i := range params {
		params[i] = 0.02 * float32(rng.NormFloat64())
	}
	other, err := train.SaveWeights(ctx, "file://"+filepath.Join(dir, "base-b"), cfg, params, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	names, err := writeBenchAdapters(ctx, dir, other, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.Join(dir, names[0]), other
}

// TestSystemAdapterAddNoAnswer: a replica that passed its health check
// but does not answer (its process gone, its node not yet marked down)
// gives no verdict: ark job adapter add waits --timeout, names the
// replica and why, exits 1 and leaves the adapter in the spec (nothing
// says it is wrong); --no-wait returns at the commit.
func TestSystemAdapterAddNoAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A node with no agent: the test reports its replica's state itself.
	if _, err := c.RegisterNode(ctx, &api.Node{Name: "mute", Address: "127.0.0.1", CPUMilli: 8000, MemoryBytes: 64 << 30,
		GPUs: []api.GPU{{Index: 0, UUID: "mute-gpu", Model: "NVIDIA H200", MemoryBytes: 141 << 30}}}); err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	id := submitSpec(t, s.http, "name: mute\nkind: inference\nresources: {gpus: 1, cpu: 500m, memory: 256Mi}\n"+
		"task: {driver: builtin, builtin: {model: gpt-tiny, base: "+base+"}}\n")
	var alloc *api.Allocation
	waitUntil(t, 30*time.Second, "the replica placed", func() bool {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil || len(j.Allocations) != 1 || j.Allocations[0].Port == 0 {
			return false
		}
		alloc = j.Allocations[0]
		return true
	})
	// Nothing listens on its port (a free port of this machine).
	ready := true
	if err := c.UpdateAllocStatus(ctx, alloc.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}); err != nil {
		t.Fatal(err)
	}
	// Checkpoints (that do not exist) beside the base, in the directory
	// its replica's sandbox opened: the adds are in place, as the
	// replica is (a new directory would roll it instead).
	quill := "file://" + filepath.Join(filepath.Dir(base), "nowhere", "quill")
	ink := "file://" + filepath.Join(filepath.Dir(base), "nowhere", "ink")
	began := time.Now()
	out, err := cli(t, s.http, "job", "adapter", "add", id, "quill", quill, "--timeout", "2s")
	took := time.Since(began)
	if exitCodeOf(err) != 1 || !strings.Contains(out, "adapter quill: loaded on 0/1 replicas after 2s; the others have not answered:") ||
		!strings.Contains(out, "replica 0 ("+alloc.ID+" on mute): unknown: did not answer GET /v1/adapters") ||
		!strings.Contains(out, "adapter quill stays in the spec") || took < 2*time.Second {
		t.Errorf("add with a mute replica: %v after %s\n%s\nwant exit 1 after 2s naming replica 0, the adapter kept", err, took, out)
	}
	// -o json: the commit and each replica's state, for a script.
	out, err = cli(t, s.http, "job", "adapter", "add", id, "quill", quill, "--timeout", "1s", "-o", "json")
	var res struct {
		Name     string `json:"name"`
		Changed  bool   `json:"changed"`
		TimedOut bool   `json:"timedOut"`
		Loaded   int    `json:"loaded"`
		Replicas []struct {
			Rank  int    `json:"rank"`
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"replicas"`
	}
	if jerr := json.Unmarshal([]byte(out), &res); exitCodeOf(err) != 1 || jerr != nil || res.Name != "quill" || res.Changed || !res.TimedOut ||
		len(res.Replicas) != 1 || res.Replicas[0].State != "unknown" || !strings.Contains(res.Replicas[0].Error, "did not answer") {
		t.Errorf("add again -o json: %v %v\n%s\nwant exit 1, unchanged, timed out, replica 0 unknown", err, jerr, out)
	}
	out, err = cli(t, s.http, "job", "adapter", "add", id, "ink", ink, "--no-wait")
	if err != nil || !strings.Contains(out, "adapter ink added from "+ink+": version 2, applied in place on 1 replicas") || strings.Contains(out, "replicas:") {
		t.Errorf("add --no-wait: %v\n%s", err, out)
	}
	j, _, err := c.Job(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if as := j.Spec.Task.Builtin.Adapters; len(as) != 2 || as[0].Name != "quill" || as[1].Name != "ink" {
		t.Errorf("adapters in the spec: %+v, want quill and ink", as)
	}
}
