package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// What a new user looks for after a run (issue 19): a fine-tune's
// checkpoint URIs in `ark job status`, in the form the store writes;
// `ark ckpt list JOB` finding the cluster's store by itself; and a failed
// run's reason quoting the failing rank's stderr.

// TestSystemJobStatusShowsCheckpoints: a finished fine-tune's status names
// its newest checkpoint and every step the store keeps, all in the form
// STORE/NAMESPACE/JOB/000000000020, and `ark ckpt list JOB` lists them
// with no --store.
func TestSystemJobStatusShowsCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	data, _ := filepath.Abs("../../examples/data/shakespeare.txt")
	id := submitSpec(t, s.http, fmt.Sprintf(`name: ckpt-ft
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-test, data: %s, steps: 30, batch: 2}
checkpoint: {every: 10, keep: 2}
`, data))
	var st string
	waitUntil(t, 120*time.Second, "the fine-tune to succeed", func() bool {
		st, _ = cli(t, s.http, "job", "status", id)
		return strings.Contains(st, "Status     succeeded")
	})
	store := "file://" + filepath.Join(s.dir, "checkpoints") + "/default/" + id
	for _, w := range []string{
		"Checkpoint " + store + "/000000000030 (step 30,",
		"  step 20     " + store + "/000000000020",
		"  step 30     " + store + "/000000000030",
	} {
		if !strings.Contains(st, w) {
			t.Errorf("job status lacks %q:\n%s", w, st)
		}
	}
	if regexp.MustCompile(`/` + regexp.QuoteMeta(id) + `/\d{1,11}\b`).MatchString(st) {
		t.Errorf("job status shows a step not in the 12-digit form:\n%s", st)
	}

	// By ID prefix and by name, with no --store: the servers say where.
	for _, ref := range []string{id[:len(id)-2], "ckpt-ft"} {
		out, err := cli(t, s.http, "ckpt", "list", ref)
		if err != nil {
			t.Fatalf("ckpt list %s: %v", ref, err)
		}
		if !strings.Contains(out, "30    complete") && !strings.Contains(out, store+"/000000000030") {
			t.Errorf("ckpt list %s lacks step 30 at %s:\n%s", ref, store, out)
		}
	}
	if out, err := cli(t, s.http, "ckpt", "list", "no-such-job"); err == nil || exitCodeOf(err) == 0 {
		t.Errorf("ckpt list of an unknown job succeeded: %s", out)
	}
}

// TestSystemFailureReasonQuotesStderr: a task that fails prints why on
// stderr; the job's reason quotes its last lines, and its status shows the
// tail, not only "exit code 2".
func TestSystemFailureReasonQuotesStderr(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	id := submitSpec(t, s.http, `name: fails
kind: batch
resources: {gpus: 1}
task:
  driver: exec
  exec: {command: ["sh", "-c", "echo starting; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo noise $i >&2; done; echo 'ValueError: learning rate must be positive' >&2; exit 2"]}
`)
	var st string
	waitUntil(t, 60*time.Second, "the job to fail", func() bool {
		st, _ = cli(t, s.http, "job", "status", id)
		return strings.Contains(st, "Status     failed")
	})
	want := "Reason     rank 0 failed on node a: exit code 2; stderr: noise 11 | noise 12 | ValueError: learning rate must be positive"
	if !strings.Contains(st, want) {
		t.Errorf("job status lacks %q:\n%s", want, st)
	}
	// The status shows the bounded tail: the last 10 lines, not the first.
	if !strings.Contains(st, "stderr, last lines:\n  noise 4\n") || strings.Contains(st, "noise 3\n") {
		t.Errorf("job status does not show the last 10 stderr lines:\n%s", st)
	}
	list, _ := cli(t, s.http, "job", "list")
	if !strings.Contains(list, "exit code 2; stderr:") {
		t.Errorf("job list does not show the cause:\n%s", list)
	}
}

// TestSystemPendingReasonsInWords: `ark job status` of a pending job says
// in plain words, one rule a line, why it waits, and whether it waits for
// other work to end or for nodes that fit; -o json carries the reasons
// and the verdict as fields.
func TestSystemPendingReasonsInWords(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	hold := submitSpec(t, s.http, "name: hold\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [sleep, \"60\"]}}\n")
	waitUntil(t, 30*time.Second, "the holding job to run", func() bool {
		st, _ := cli(t, s.http, "job", "status", hold)
		return strings.Contains(st, "Status     running")
	})
	waits := submitSpec(t, s.http, "name: waits\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")
	never := submitSpec(t, s.http, "name: never\nkind: batch\nresources: {gpus: 4}\ntask: {driver: exec, exec: {command: [\"true\"]}}\n")
	var st string
	waitUntil(t, 30*time.Second, "a pending reason", func() bool {
		st, _ = cli(t, s.http, "job", "status", waits)
		return strings.Contains(st, "Waiting ")
	})
	if !strings.Contains(st, "Waiting    for resources held by other work, because:\n  - 1 node lacks ") {
		t.Errorf("status of a job that fits later:\n%s", st)
	}
	waitUntil(t, 30*time.Second, "a pending reason", func() bool {
		st, _ = cli(t, s.http, "job", "status", never)
		return strings.Contains(st, "Waiting ")
	})
	if !strings.Contains(st, "Waiting    for nodes that fit: no ready node could take it even if the cluster were idle\n  - 1 node ") {
		t.Errorf("status of a job that cannot fit:\n%s", st)
	}
	js, err := cli(t, s.http, "job", "status", never, "-o", "json")
	if err != nil || !strings.Contains(js, `"cannotFit": true`) || !strings.Contains(js, `"rule": "`) {
		t.Errorf("json status lacks the verdict or the reasons (%v):\n%s", err, js)
	}
	t.Logf("pending statuses:\n%s", st)
}
