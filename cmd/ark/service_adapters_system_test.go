package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
)

// TestSystemServiceAdaptersInPlace: an adapter added to a running builtin
// service with ark job adapter add (servers without a cluster key) is a
// new version of its spec applied in place: the replicas keep their
// allocations and load it within seconds; a replica started after the
// add (its process killed, its replacement a new allocation) serves it
// from its spec; ark job adapter rm drops it everywhere, again in place.
// A process of the node (loopback) cannot manage a replica's adapters.
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
	// opens the store's directory to it (worker/driver confinePaths), so
	// legal, added at run time from the same store, is readable too.
	store := filepath.Join(t.TempDir(), "store")
	names, err := writeBenchAdapters(ctx, store, base, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	// The replicas run as the task user: the test's directories (0700)
	// and the store's files must let it read them.
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
	bard, adapter := "file://"+filepath.Join(store, names[0]), "file://"+filepath.Join(store, names[1])
	id := submitSpec(t, s.http, "name: multi\nkind: inference\nreplicas: 2\nresources: {gpus: 1, cpu: 500m, memory: 256Mi}\nrestart: {backoff: 1s}\n"+
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
	out, err := cli(t, s.http, "job", "adapter", "add", id, "legal", adapter)
	if err != nil || !strings.Contains(out, "adapter legal added from "+adapter+": version 1, applied in place on 2 replicas") {
		t.Fatalf("job adapter add: %v %q", err, out)
	}
	added := time.Now()
	waitUntil(t, 30*time.Second, "legal served by both replicas", func() bool {
		return ask(before[0], "legal") == 200 && ask(before[1], "legal") == 200
	})
	t.Logf("FIGURE adapter added in place: served by both replicas %s after ark job adapter add (agents polled every 2s)", time.Since(added).Round(10*time.Millisecond))
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
	hist, err := cli(t, s.http, "job", "history", id)
	if err != nil || strings.Count(hist, "\n") < 3 {
		t.Errorf("job history: %v\n%s", err, hist)
	}
	if _, err := cli(t, s.http, "job", "cancel", id); err != nil {
		t.Fatal(err)
	}
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
