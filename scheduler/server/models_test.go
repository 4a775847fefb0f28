package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// TestModelCatalogTenants: one tenant can neither see, name, change nor
// write results into another's private models; a public model is
// readable by all and changed only by its owner.
func TestModelCatalogTenants(t *testing.T) {
	s := tokenServer(t, Config{})
	ctx := context.Background()
	nlp, vision, mgmt := as(t, s, nlpTok), as(t, s, visionTok), as(t, s, mgmtTok)
	yes := true
	reg := func(req api.ModelRegisterRequest) error {
		_, err := nlp.RegisterModel(ctx, req)
		return err
	}
	if err := reg(api.ModelRegisterRequest{Name: "secret", Namespace: "nlp", Arch: api.ModelArch{Preset: "gpt-tiny"}, URI: "file:///ckpt/nlp/secret"}); err != nil {
		t.Fatal(err)
	}
	if err := reg(api.ModelRegisterRequest{Name: "shared", Namespace: "nlp", Public: &yes, Arch: api.ModelArch{Preset: "gpt-tiny"}, URI: "file:///ckpt/pub/shared"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"another tenant cannot show a private model", func() error { _, err := vision.Model(ctx, "nlp", "secret"); return err }(), 404},
		{"another tenant shows a public model", func() error { _, err := vision.Model(ctx, "nlp", "shared"); return err }(), 200},
		{"another tenant cannot register in the namespace", func() error {
			_, err := vision.RegisterModel(ctx, api.ModelRegisterRequest{Name: "secret", Namespace: "nlp", URI: "file:///evil"})
			return err
		}(), 403},
		{"another tenant cannot remove a private model", func() error { _, err := vision.DeleteModel(ctx, "nlp", "secret", 0); return err }(), 404},
		{"another tenant cannot remove a public model", func() error { _, err := vision.DeleteModel(ctx, "nlp", "shared", 1); return err }(), 403},
		{"another tenant cannot record results on a public model", func() error {
			return vision.RecordEvals(ctx, "shared", api.ModelEvalRequest{Namespace: "nlp", Version: 1, Results: []api.EvalResult{{Dataset: "d", Loss: 0.1}}})
		}(), 403},
		{"the owner records results", func() error {
			return nlp.RecordEvals(ctx, "shared", api.ModelEvalRequest{Namespace: "nlp", Version: 1, Results: []api.EvalResult{{Dataset: "d", Loss: 2}}})
		}(), 200},
		{"a loss that is no number is refused", func() error {
			return nlp.RecordEvals(ctx, "shared", api.ModelEvalRequest{Namespace: "nlp", Version: 1, Results: []api.EvalResult{{Dataset: "d", Loss: -1}}})
		}(), 400},
		{"a name with a path in it is refused", func() error {
			_, err := nlp.RegisterModel(ctx, api.ModelRegisterRequest{Name: "../x", Namespace: "nlp"})
			return err
		}(), 400},
		{"a relative checkpoint is refused", func() error {
			_, err := nlp.RegisterModel(ctx, api.ModelRegisterRequest{Name: "x", Namespace: "nlp", URI: "ckpt/x"})
			return err
		}(), 400},
		{"management reads every namespace", func() error { _, err := mgmt.Model(ctx, "nlp", "secret"); return err }(), 200},
	}
	for _, tc := range cases {
		if got := code(tc.err); got != tc.want {
			t.Errorf("%s: %d (%v), want %d", tc.name, got, tc.err, tc.want)
		}
	}
	list, err := vision.Models(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Namespace+"/"+m.Name)
	}
	if !slices.Equal(names, []string{"nlp/shared"}) {
		t.Errorf("vision lists %v, want only the public nlp/shared", names)
	}

	// A job of another tenant cannot name the private model; the public
	// one resolves to its checkpoint.
	spec := func(base string) []byte {
		return []byte(`{"name":"srv","namespace":"vision","kind":"inference","replicas":1,"resources":{"gpus":1},"task":{"driver":"builtin","builtin":{"base":"` + base + `"}}}`)
	}
	_, err = vision.SubmitJob(ctx, spec("model://secret"))
	if code(err) != 400 || !strings.Contains(err.Error(), `no model "secret" in namespace "vision"`) {
		t.Errorf("naming another tenant's private model: %v", err)
	}
	resp, err := vision.SubmitJob(ctx, spec("model://shared@1"))
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := vision.Job(ctx, resp.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if j.Spec.Task.Builtin.Base != "file:///ckpt/pub/shared" || j.Spec.Task.Builtin.Model != "gpt-tiny" || len(j.Models) != 1 || j.Models[0].Namespace != "nlp" {
		t.Errorf("resolved spec base %q model %q refs %+v", j.Spec.Task.Builtin.Base, j.Spec.Task.Builtin.Model, j.Models)
	}
}

// An eval job's results are filed only in models of its own namespace: a
// task reports its own figures, and must not write into a public model
// another tenant owns.
func TestEvalRecordsOwnNamespaceOnly(t *testing.T) {
	j := &api.Job{ID: "ev-1", Namespace: "vision", Models: []api.ModelRef{
		{Field: "task.builtin.base[0]", Namespace: "nlp", Model: "shared", Version: 1, URI: "file:///a"},
		{Field: "task.builtin.base[1]", Namespace: "vision", Model: "mine", Version: 2, URI: "file:///b"},
		{Field: "task.builtin.adapters[0].uri", Namespace: "vision", Model: "ad", Version: 1, URI: "file:///c"},
	}}
	allocs := []*api.Allocation{{Rank: 0, Evals: []api.EvalResult{
		{Dataset: "d", Checkpoint: "file:///a", Loss: 0.01}, {Dataset: "d", Checkpoint: "file:///b", Loss: 2}, {Dataset: "d", Checkpoint: "file:///c", Loss: 1},
	}}}
	req := evalRecords(j, allocs)
	want := []state.VersionEvals{{Namespace: "vision", Name: "mine", Version: 2, Results: []api.EvalResult{{Dataset: "d", Checkpoint: "file:///b", Loss: 2, Job: "ev-1"}}}}
	if req.JobID != "ev-1" || len(req.Evals) != 1 || req.Evals[0].Name != want[0].Name || req.Evals[0].Results[0] != want[0].Results[0] {
		t.Errorf("filed %+v, want %+v", req.Evals, want)
	}
}

func TestLossOf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"step 150/150 loss 1.9234 lr 1e-3", 1.9234, true},
		{"step 3/10 loss=2.5e-1", 0.25, true},
		{"serving on http://x", 0, false},
		{"", 0, false},
	} {
		got, ok := lossOf(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lossOf(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
