package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestAdapterVerdicts: each replica's state of the added adapter, read
// from GET /v1/jobs/ID/adapters: a row of another checkpoint (the old
// adapter of that name, on a replica not told yet) is pending, a replica
// that did not answer is unknown, and the wait is settled only when every
// replica loaded it or failed.
func TestAdapterVerdicts(t *testing.T) {
	const uri = "file:///ckpt/quill"
	row := func(tier, uri, err string) []api.ReplicaAdapter {
		return []api.ReplicaAdapter{{Name: "quill", URI: uri, Tier: tier, Error: err}}
	}
	cases := []struct {
		name     string
		replicas []api.ReplicaAdapters
		want     []string // states by rank
		settled  bool
	}{
		{"loaded in every tier", []api.ReplicaAdapters{
			{Rank: 2, Adapters: row(api.AdapterStore, uri, "")},
			{Rank: 0, Adapters: row(api.AdapterActive, uri, "")},
			{Rank: 1, Adapters: row(api.AdapterHost, uri, "")},
		}, []string{verdictLoaded, verdictLoaded, verdictLoaded}, true},
		{"one failed, one loaded", []api.ReplicaAdapters{
			{Rank: 0, Adapters: row(api.AdapterFailed, uri, "not an adapter of this base")},
			{Rank: 1, Adapters: row(api.AdapterHost, uri, "")},
		}, []string{verdictFailed, verdictLoaded}, true},
		{"still loading, not told yet, the old checkpoint", []api.ReplicaAdapters{
			{Rank: 0, Adapters: row(api.AdapterLoading, uri, "")},
			{Rank: 1, Adapters: []api.ReplicaAdapter{}},
			{Rank: 2, Adapters: row(api.AdapterHost, "file:///ckpt/quill-old", "")},
		}, []string{api.AdapterLoading, api.AdapterPending, api.AdapterPending}, false},
		{"a replica that did not answer", []api.ReplicaAdapters{
			{Rank: 0, Error: "not ready yet"},
			{Rank: 1, Adapters: row(api.AdapterHost, uri, "")},
		}, []string{verdictUnknown, verdictLoaded}, false},
		{"no replica", nil, []string{}, true},
	}
	for _, tc := range cases {
		vs := verdicts(&api.ServiceAdapterStates{Replicas: tc.replicas}, "quill", uri)
		got := []string{}
		for i, v := range vs {
			if v.Rank != i {
				t.Errorf("%s: row %d is rank %d, want ranks in order", tc.name, i, v.Rank)
			}
			got = append(got, v.State)
		}
		if !slices.Equal(got, tc.want) || settled(vs) != tc.settled {
			t.Errorf("%s: states %v settled %v, want %v %v", tc.name, got, settled(vs), tc.want, tc.settled)
		}
		for _, v := range vs {
			if v.State == verdictFailed && v.Error != "not an adapter of this base" {
				t.Errorf("%s: failed replica %d lost its error: %q", tc.name, v.Rank, v.Error)
			}
		}
	}
}

// TestAdapterAnswerLine: the add's first line says whether the replicas
// take the adapter in place or are rolled, and names the directory new to
// their sandboxes when that is why.
func TestAdapterAnswerLine(t *testing.T) {
	cases := []struct {
		name string
		ans  api.ServiceAdapterAnswer
		want string
	}{
		{"unchanged", api.ServiceAdapterAnswer{Name: "legal", URI: "file:///st/legal", Version: 3},
			"adapter legal from file:///st/legal: already in version 3, nothing to change"},
		{"in place", api.ServiceAdapterAnswer{Name: "legal", URI: "file:///st/legal", Version: 4, Changed: true, InPlace: 2},
			"adapter legal added from file:///st/legal: version 4, applied in place on 2 replicas (they take it within seconds)"},
		{"a new directory", api.ServiceAdapterAnswer{Name: "far", URI: "file:///x/st/far", Version: 5, Changed: true, Rollout: true, NewPaths: []string{"/x"}},
			"adapter far added from file:///x/st/far: version 5, rolling the replicas: the adapter's directory /x is new to them (a replica reads only the local paths its spec named when it started); new replicas start with it"},
		{"a rollout for another reason, some in place", api.ServiceAdapterAnswer{Name: "s", URI: "s3://b/s", Version: 6, Changed: true, Rollout: true, InPlace: 1},
			"adapter s added from s3://b/s: version 6, applied in place on 1 replicas, rolling the others (a rollout: ark job status shows it)"},
	}
	for _, tc := range cases {
		if got := adapterAnswerLine(&tc.ans, "added"); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestReportAdapterRollout: past --timeout during a rollout the add says
// the rollout has not ended (the old replicas never load the adapter),
// not that they did not answer.
func TestReportAdapterRollout(t *testing.T) {
	res := &adapterAddResult{
		ServiceAdapterAnswer: &api.ServiceAdapterAnswer{Name: "far", Changed: true, Rollout: true, NewPaths: []string{"/x"}},
		Replicas:             []replicaVerdict{{Rank: 0, Alloc: "s-0-new", State: verdictLoaded}, {Rank: 1, Alloc: "s-1-old", Node: "b", State: api.AdapterPending}},
		Loaded:               1, TimedOut: true,
	}
	var b strings.Builder
	reportAdapter(&b, "s", res, time.Minute, false)
	want := "adapter far: loaded on 1/2 replicas after 1m0s; the rollout has not ended (ark job status s follows it):\n" +
		"  replica 1 (s-1-old on b): pending\n" +
		"adapter far stays in the spec; ark job adapter rm s far removes it\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
