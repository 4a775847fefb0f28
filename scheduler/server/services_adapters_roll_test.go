package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestServiceAdapterRollsForNewPaths: an adapter the running replicas may
// read (an object store, a catalog model stored there, a checkpoint in a
// store their spec already opened) is added in place; one whose local
// checkpoint lies where their sandboxes do not reach (here a catalog
// model, resolved to its file:// checkpoint before the decision) rolls
// them, and the answer names the new path. Removing it again is in place.
func TestServiceAdapterRollsForNewPaths(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	for name, uri := range map[string]string{"cloud": "s3://bucket/cloud/1", "far": "file:///other/far/1"} {
		if _, err := c.RegisterModel(ctx, api.ModelRegisterRequest{Name: name, Arch: api.ModelArch{Preset: "gpt-tiny"}, URI: uri, Adapter: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterNode(ctx, fakeNode("a", 4)); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubmitJob(ctx, []byte(`{"name":"srv","kind":"inference","replicas":2,"resources":{"gpus":1},"task":{"driver":"builtin","builtin":`+
		`{"model":"gpt-tiny","base":"file:///data/nlp/base","adapters":[{"name":"bard","uri":"file:///data/nlp/adapters/bard/1"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitUntil(t, 10*time.Second, "both replicas placed", func() bool {
		job, _, err = c.Job(ctx, sub.ID, 0, 0)
		return err == nil && len(job.Allocations) == 2
	})
	ready := true
	for _, a := range job.Allocations {
		if err := c.UpdateAllocStatus(ctx, a.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ready}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "the service running", func() bool {
		job, _, err = c.Job(ctx, sub.ID, 0, 0)
		return err == nil && job.Status == api.JobRunning
	})
	cases := []struct {
		name, uri string
		rollout   bool
		newPaths  []string
		resolved  string
	}{
		{"s3", "s3://bucket/s3/1", false, nil, "s3://bucket/s3/1"},
		{"cloud", "model://cloud", false, nil, "s3://bucket/cloud/1"},
		{"med", "file:///data/nlp/adapters/med/1", false, nil, "file:///data/nlp/adapters/med/1"},
		{"far", "model://far", true, []string{"/other"}, "file:///other/far/1"},
	}
	for _, tc := range cases {
		ans, err := c.AddServiceAdapter(ctx, sub.ID, api.ServiceAdapterRequest{Name: tc.name, URI: tc.uri})
		if err != nil {
			t.Fatalf("add %s: %v", tc.name, err)
		}
		wantInPlace := 2
		if tc.rollout {
			wantInPlace = 0
		}
		if !ans.Changed || ans.URI != tc.resolved || ans.Rollout != tc.rollout || ans.InPlace != wantInPlace || !slices.Equal(ans.NewPaths, tc.newPaths) {
			t.Errorf("add %s (%s): %+v, want %s, rollout %v, in place on %d, new paths %q", tc.name, tc.uri, ans, tc.resolved, tc.rollout, wantInPlace, tc.newPaths)
		}
		j, _, err := c.Job(ctx, sub.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := j.Deployment.Active(); got != tc.rollout {
			t.Errorf("add %s: a rollout running = %v, want %v (%s)", tc.name, got, tc.rollout, j.Reason)
		}
	}
	ans, err := c.RemoveServiceAdapter(ctx, sub.ID, "far")
	if err != nil || ans.Rollout || len(ans.NewPaths) != 0 {
		t.Errorf("remove far: %+v %v, want in place", ans, err)
	}
}
