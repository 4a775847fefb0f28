package state

import (
	"errors"
	"slices"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
)

func register(h *harness, r api.ModelRegisterRequest) (*api.ModelRegisterResponse, error) {
	h.t.Helper()
	switch v := h.apply(ModelRegisterType, ModelRegisterRequest{Model: r, Time: t0}).(type) {
	case *api.ModelRegisterResponse:
		return v, nil
	case error:
		return nil, v
	default:
		h.t.Fatalf("ModelRegister answered %T", v)
		return nil, nil
	}
}

func TestModelCatalog(t *testing.T) {
	if ModelRegisterType != 19 || ModelDeleteType != 20 || ModelEvalType != 21 {
		t.Fatal("message type values changed")
	}
	h := newHarness(t)
	tiny := api.ModelArch{Family: "gpt2", Preset: "gpt-tiny"}
	yes := true
	steps := []struct {
		name    string
		req     api.ModelRegisterRequest
		version int
		err     error
	}{
		{"the model alone", api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", Arch: tiny, Description: "d", Public: &yes}, 0, nil},
		{"first version", api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", URI: "file:///c/base"}, 1, nil},
		{"a fine-tune", api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", URI: "file:///c/ft/150",
			Lineage: &api.Lineage{Parent: "shake@1", Job: "ft-1", Method: api.MethodFull}}, 2, nil},
		{"the same result again", api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", URI: "file:///c/ft/150",
			Lineage: &api.Lineage{Parent: "shake@1", Job: "ft-1", Method: api.MethodFull}}, 2, nil},
		{"another architecture", api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", URI: "file:///c/x", Arch: api.ModelArch{Preset: "gpt-small"}}, 0, ErrConflict},
		{"same name, other namespace", api.ModelRegisterRequest{Name: "shake", Namespace: "vision", URI: "file:///c/base"}, 1, nil},
		{"shares version 1's checkpoint", api.ModelRegisterRequest{Name: "copy", Namespace: "nlp", URI: "file:///c/base"}, 1, nil},
	}
	for _, s := range steps {
		got, err := register(h, s.req)
		if !errors.Is(err, s.err) || (err == nil && got.Version != s.version) {
			t.Fatalf("%s: got %+v, %v; want version %d, %v", s.name, got, err, s.version, s.err)
		}
	}
	m := h.snap().Model(nil, "nlp", "shake")
	if m == nil || !m.Public || m.Description != "d" || m.Arch != tiny || len(m.Versions) != 2 || m.LastVersion != 2 {
		t.Fatalf("stored model %+v", m)
	}
	if l := m.Versions[1].Lineage; l == nil || l.Parent != "shake@1" || l.Job != "ft-1" {
		t.Fatalf("lineage %+v", l)
	}
	if n := len(h.snap().Models(nil)); n != 3 {
		t.Fatalf("%d models, want 3", n)
	}

	// Evaluations: a rerun of the same job and dataset replaces its row.
	for _, loss := range []float64{2.0, 1.5} {
		h.ok(ModelEvalType, ModelEvalRequest{Evals: []VersionEvals{{Namespace: "nlp", Name: "shake", Version: 2,
			Results: []api.EvalResult{{Dataset: "shakespeare", Job: "ev-1", Loss: loss}}}}})
	}
	h.ok(ModelEvalType, ModelEvalRequest{Evals: []VersionEvals{{Namespace: "nlp", Name: "shake", Version: 2,
		Results: []api.EvalResult{{Dataset: "other", Job: "ev-2", Loss: 3}}}}})
	if ev := h.snap().Model(nil, "nlp", "shake").Versions[1].Evals; len(ev) != 2 || ev[0].Dataset != "shakespeare" || ev[0].Loss != 1.5 {
		t.Fatalf("evals %+v", ev)
	}
	if err, _ := h.apply(ModelEvalType, ModelEvalRequest{Evals: []VersionEvals{{Namespace: "nlp", Name: "shake", Version: 9}}}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("eval of a missing version: %v", err)
	}
	// An eval job's results: a version removed since is passed over,
	// and the job is marked recorded.
	h.addJob("ev-3", 1, 1)
	h.ok(ModelEvalType, ModelEvalRequest{JobID: "ev-3", Evals: []VersionEvals{
		{Namespace: "nlp", Name: "shake", Version: 9, Results: []api.EvalResult{{Dataset: "d", Job: "ev-3"}}},
		{Namespace: "nlp", Name: "shake", Version: 1, Results: []api.EvalResult{{Dataset: "d", Job: "ev-3", Loss: 2.5}}},
	}})
	if !h.job("ev-3").EvalsRecorded {
		t.Fatal("eval job not marked recorded")
	}
	if ev := h.snap().Model(nil, "nlp", "shake").Versions[0].Evals; len(ev) != 1 || ev[0].Loss != 2.5 {
		t.Fatalf("version 1 evals %+v", ev)
	}

	// A version in use by an unfinished job stays.
	j := testJob("serve-1", 1, 1)
	j.Models = []api.ModelRef{{Field: "task.builtin.base", Ref: "model://shake@1", Namespace: "nlp", Model: "shake", Version: 1, URI: "file:///c/base"}}
	h.ok(RegisterJobType, RegisterJobRequest{Job: j})
	if err, _ := h.apply(ModelDeleteType, ModelDeleteRequest{Namespace: "nlp", Name: "shake", Version: 1}).(error); !errors.Is(err, ErrConflict) {
		t.Fatalf("removing a version in use: %v", err)
	}
	// Version 2 is not in use; its checkpoint is named by no other.
	del, _ := h.ok(ModelDeleteType, ModelDeleteRequest{Namespace: "nlp", Name: "shake", Version: 2}).(*api.ModelDeleteResponse)
	if del == nil || !slices.Equal(del.Removed, []int{2}) || !slices.Equal(del.Unshared, []string{"file:///c/ft/150"}) {
		t.Fatalf("delete version 2: %+v", del)
	}
	// Version numbers are not reused.
	if got, err := register(h, api.ModelRegisterRequest{Name: "shake", Namespace: "nlp", URI: "file:///c/ft2"}); err != nil || got.Version != 3 {
		t.Fatalf("version after a removal: %+v, %v", got, err)
	}
	h.ok(CancelJobType, CancelJobRequest{JobID: "serve-1", Time: t0})
	// The whole model: version 1's checkpoint is shared with nlp/copy
	// and vision/shake, so its data is kept.
	del, _ = h.ok(ModelDeleteType, ModelDeleteRequest{Namespace: "nlp", Name: "shake"}).(*api.ModelDeleteResponse)
	if del == nil || !slices.Equal(del.Removed, []int{1, 3}) || !slices.Equal(del.KeptShared, []string{"file:///c/base"}) || !slices.Equal(del.Unshared, []string{"file:///c/ft2"}) {
		t.Fatalf("delete model: %+v", del)
	}
	if h.snap().Model(nil, "nlp", "shake") != nil {
		t.Fatal("model still there")
	}
	if err, _ := h.apply(ModelDeleteType, ModelDeleteRequest{Namespace: "nlp", Name: "shake"}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

	// Snapshots keep the catalog.
	restored := NewFSM(zaptest.NewLogger(t))
	if err := restored.Restore(readCloser(persist(t, h.fsm).Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := restored.Store().Snapshot().Model(nil, "nlp", "copy"); got == nil || len(got.Versions) != 1 || got.Versions[0].URI != "file:///c/base" {
		t.Fatalf("restored %+v", got)
	}
}

// A job's result registered as a version is recorded on the job, so the
// servers register each result once.
func TestModelRegisterRecordsJobOutput(t *testing.T) {
	h := newHarness(t)
	h.addJob("ft-1", 1, 1)
	ns := h.job("ft-1").Namespace
	if _, err := register(h, api.ModelRegisterRequest{Name: "m", Namespace: ns, URI: "file:///c/ft-1/10", Lineage: &api.Lineage{Job: "ft-1"}}); err != nil {
		t.Fatal(err)
	}
	if got := h.job("ft-1").Output; got != "m@1" {
		t.Fatalf("job output %q, want m@1", got)
	}
	// A job of another namespace is not touched.
	h.addJob("ft-2", 1, 1)
	if _, err := register(h, api.ModelRegisterRequest{Name: "m", Namespace: "elsewhere", URI: "file:///c/x", Lineage: &api.Lineage{Job: "ft-2"}}); err != nil {
		t.Fatal(err)
	}
	if got := h.job("ft-2").Output; got != "" {
		t.Fatalf("other namespace's job output %q", got)
	}
}
