package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestPendingNamesHolders: a job waiting for GPUs that another job holds
// says which job, in the plain `ark job status` of a live cluster.
func TestPendingNamesHolders(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "2xH200:141Gi", []string{"gpu-a"})
	holder := submitSpec(t, s.http, "name: holder\nkind: batch\nresources: {gpus: 2}\ntask: {driver: exec, exec: {command: [sh, -c, 'sleep 60']}}\n")
	waitUntil(t, 30*time.Second, "the holder to run", func() bool {
		out, _ := cli(t, s.http, "job", "status", holder)
		return strings.Contains(out, "Status     running")
	})
	waiter := submitSpec(t, s.http, "name: waiter\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [sh, -c, 'true']}}\n")
	want := "1 node lacks 1 free GPU, held by job " + holder
	var out string
	waitUntil(t, 30*time.Second, "the waiter's reason to name the holder", func() bool {
		out, _ = cli(t, s.http, "job", "status", waiter)
		return strings.Contains(out, want)
	})
	if out, code := arkOut(t, s.http, "job", "cancel", holder, waiter); code != 0 {
		t.Errorf("cancel: exit %d\n%s", code, out)
	}
}

// TestReasonWordsHolders: how a reason names the jobs holding its GPUs.
func TestReasonWordsHolders(t *testing.T) {
	tests := []struct {
		r    api.Reason
		want string
	}{
		{api.Reason{Rule: "free_gpus", Nodes: 1, Detail: "lack 4 free GPUs", Holders: []string{"serve-1a2b"}},
			"1 node lacks 4 free GPUs, held by job serve-1a2b"},
		{api.Reason{Rule: "free_gpus", Nodes: 2, Detail: "lack 4 free GPUs", Holders: []string{"serve-1a2b", "train-9f3c"}},
			"2 nodes lack 4 free GPUs, held by jobs serve-1a2b, train-9f3c"},
		{api.Reason{Rule: "nvlink", Nodes: 5, Detail: "lack 4 free GPUs in one NVLink domain", Holders: []string{"a", "b", "c", "d", "e"}},
			"5 nodes lack 4 free GPUs in one NVLink domain, held by jobs a, b, c and 2 more"},
		{api.Reason{Rule: "cpu", Nodes: 1, Detail: "have too little free CPU"}, "1 node has too little free CPU"},
	}
	for _, tt := range tests {
		if got := reasonWords(tt.r); got != tt.want {
			t.Errorf("reasonWords(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
	var b bytes.Buffer
	printPending(&b, &api.Job{Status: api.JobPending, Reasons: []api.Reason{tests[0].r}})
	if !strings.Contains(b.String(), "  - "+tests[0].want) {
		t.Errorf("printPending:\n%s", b.String())
	}
}
