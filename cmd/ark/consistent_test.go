package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
)

// arkOut runs a client command against addr (none if "") and returns its
// stdout and stderr together, with its exit code.
func arkOut(t *testing.T, addr string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	if addr != "" {
		args = append(args, "--addr", addr)
	}
	out, err := exec.CommandContext(ctx, arkBin, args...).CombinedOutput()
	return string(out), exitCodeOf(err)
}

// TestConsistentCommands: ark version and --version; job status, cancel
// and logs take a unique ID prefix or a name, and say what matched when
// several do and what is close when none does; cancel is idempotent and
// takes several jobs; logs says which rank it shows, lists the valid ones,
// and with -f waits for a pending job to start.
func TestConsistentCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "2xH200:141Gi", []string{"gpu-a"})
	status := func(id string) string {
		out, err := cli(t, s.http, "job", "status", id, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var j api.Job
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("decode %q: %v", out, err)
		}
		return j.Status
	}
	// Two finished 2-rank jobs with the same name.
	gang := "name: hi\nkind: batch\nreplicas: 2\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [sh, -c, 'echo hi']}}\n"
	var ids []string
	for range 2 {
		id := submitSpec(t, s.http, gang)
		waitUntil(t, 30*time.Second, "job "+id+" to succeed", func() bool { return status(id) == api.JobSucceeded })
		ids = append(ids, id)
	}
	a, b := ids[0], ids[1]
	common := 0
	for common < len(a) && common < len(b) && a[common] == b[common] {
		common++
	}
	uniquePrefix := a[:common+1]
	typo := a[:len(a)-1] + "z" // a with its last character mistyped
	if !strings.HasPrefix(a, "hi-") || !strings.HasPrefix(b, "hi-") {
		t.Fatalf("job IDs %s, %s do not start with the name", a, b)
	}

	cases := []struct {
		args []string
		code int
		want []string
	}{
		// version needs no server (`ark --version --addr X` is no use).
		{[]string{"version"}, 0, []string{"ark dev", "commit: ", "go: go1.", "linux/", "cuda kernels: sm_80, sm_90, compute_90 (NVRTC 11.8)"}},
		{[]string{"--version"}, 0, []string{"ark dev", "commit: ", "go: go1."}},
		{[]string{"version", "-o", "json"}, 0, []string{`"version": "dev"`, `"goVersion": "go1.`, `"cudaArchs": [`}},
		{[]string{"job", "status", a}, 0, []string{a}},
		{[]string{"job", "status", uniquePrefix}, 0, []string{a}},
		{[]string{"job", "status", "hi"}, 2, []string{`name "hi" matches 2 jobs: `, a + " (succeeded)", b + " (succeeded)", "give more of the ID"}},
		{[]string{"job", "status", "hi-"}, 2, []string{`ID prefix "hi-" matches 2 jobs: `, a + " (succeeded)", b + " (succeeded)"}},
		{[]string{"job", "status", typo}, 1, []string{`no job "` + typo + `"; did you mean "` + a + `"?`}},
		{[]string{"job", "status", "nosuch"}, 1, []string{`no job "nosuch"`}},
		{[]string{"job", "logs", uniquePrefix}, 0, []string{"hi\n", "rank 0 of 2; --rank N for another"}},
		{[]string{"job", "logs", a, "--rank", "1"}, 0, []string{"hi\n"}},
		{[]string{"job", "logs", a, "--rank", "5"}, 2, []string{"job " + a + " has no rank 5; its ranks are 0-1"}},
		{[]string{"job", "logs", "hi"}, 2, []string{`name "hi" matches 2 jobs`}},
		{[]string{"job", "cancel", uniquePrefix}, 0, []string{"job " + a + " already ended (succeeded)"}},
		{[]string{"job", "cancel", a, b}, 0, []string{"job " + a + " already ended (succeeded)", "job " + b + " already ended (succeeded)"}},
		{[]string{"job", "cancel", a, "nosuch"}, 1, []string{"job " + a + " already ended (succeeded)", `nosuch: no job "nosuch"`}},
		{[]string{"job", "cancel", "hi"}, 2, []string{`name "hi" matches 2 jobs`}},
		{[]string{"job", "cancel"}, 2, []string{"want one or more job IDs"}},
	}
	for _, tc := range cases {
		addr := s.http
		if strings.Contains(tc.args[0], "version") {
			addr = ""
		}
		out, code := arkOut(t, addr, tc.args...)
		for _, want := range tc.want {
			if code != tc.code || !strings.Contains(out, want) {
				t.Errorf("ark %s: exit %d (want %d), output %q (want %q)", strings.Join(tc.args, " "), code, tc.code, out, want)
			}
		}
	}
	if out, _ := arkOut(t, s.http, "job", "logs", a, "--rank", "1"); strings.Contains(out, "rank 0 of") {
		t.Errorf("logs with --rank still says which rank it shows:\n%s", out)
	}

	// A job that holds both GPUs keeps the next one pending; logs -f of
	// that one waits for it to start, which cancelling the first allows.
	blocker := submitSpec(t, s.http, "name: blocker\nkind: batch\nresources: {gpus: 2}\ntask: {driver: exec, exec: {command: [sleep, '60']}}\n")
	waitUntil(t, 30*time.Second, "blocker running", func() bool { return status(blocker) == api.JobRunning })
	late := submitSpec(t, s.http, "name: late\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [sh, -c, 'echo late']}}\n")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(60*time.Second))
	defer cancel()
	follow := exec.CommandContext(ctx, arkBin, "job", "logs", "-f", "late", "--addr", s.http)
	var stdout, stderr syncBuffer
	follow.Stdout, follow.Stderr = &stdout, &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "logs -f to wait", func() bool { return strings.Contains(stderr.String(), "waiting for job "+late+" to start...") })
	if st := status(late); st != api.JobPending {
		t.Fatalf("job %s is %s while logs -f waits, want pending", late, st)
	}
	if out, code := arkOut(t, s.http, "job", "cancel", "blocker"); code != 0 || !strings.Contains(out, "cancelled "+blocker) {
		t.Errorf("cancel running job: exit %d, output %q", code, out)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f of pending job: %v\nstderr: %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "late") {
		t.Errorf("logs -f of pending job printed %q, want its output", stdout.String())
	}
	if out, code := arkOut(t, s.http, "job", "cancel", blocker); code != 0 || !strings.Contains(out, "job "+blocker+" already ended (cancelled)") {
		t.Errorf("second cancel: exit %d, output %q", code, out)
	}
}
