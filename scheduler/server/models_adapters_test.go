package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestCatalogAdapterBase: a catalog adapter whose lineage names a base
// other than the service's, or a catalog version that is no adapter, is
// refused with its field and both bases, at submission and at ark job
// adapter add; one the catalog cannot settle (a base given as another
// checkpoint, no lineage, a parent gone) is taken, for the replicas to
// check its manifest.
func TestCatalogAdapterBase(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	reg := func(name, uri, checksum string, adapter bool, parent string) {
		t.Helper()
		req := api.ModelRegisterRequest{Name: name, Arch: api.ModelArch{Preset: "gpt-tiny"}, URI: uri, Checksum: checksum, Adapter: adapter}
		if parent != "" {
			req.Lineage = &api.Lineage{Parent: parent}
		}
		if _, err := c.RegisterModel(ctx, req); err != nil {
			t.Fatalf("register %s %s: %v", name, uri, err)
		}
	}
	reg("shake", "file:///ckpt/shake/1", "aaa", false, "")
	reg("shake", "file:///ckpt/shake/2", "", false, "shake@1") // a full fine-tune of shake@1
	reg("copy", "file:///ckpt/copy/1", "aaa", false, "")       // shake@1's weights, stored elsewhere
	reg("other", "file:///ckpt/other/1", "bbb", false, "")
	reg("bard", "file:///ckpt/bard/1", "", true, "shake@1")
	reg("rawkid", "file:///ckpt/rawkid/1", "", true, "file:///ckpt/raw-base")
	reg("orphan", "file:///ckpt/orphan/1", "", true, "")
	reg("lost", "file:///ckpt/lost/1", "", true, "shake@9")

	service := func(base, adapter string) []byte {
		return fmt.Appendf(nil, `{"name":"srv","kind":"inference","replicas":1,"resources":{"gpus":1},"task":{"driver":"builtin","builtin":{"model":"gpt-tiny","base":%q,"adapters":[{"name":"a","uri":%q}]}}}`, base, adapter)
	}
	cases := []struct {
		name, base, adapter string
		want                string // "" when taken
	}{
		{"the adapter's own base", "model://shake@1", "model://bard", ""},
		{"its base by its checkpoint", "file:///ckpt/shake/1", "model://bard@1", ""},
		{"the same weights under another name (checksums)", "model://copy@1", "model://bard", ""},
		{"another version of the base", "model://shake@2", "model://bard",
			`task.builtin.adapters[0].uri: "model://bard" is bard@1, a LoRA adapter of base shake@1 (file:///ckpt/shake/1) checksum aaa, but this service's base is shake@2 (file:///ckpt/shake/2)`},
		{"another base by checksum", "model://other", "model://bard@1",
			`is bard@1, a LoRA adapter of base shake@1 (file:///ckpt/shake/1) checksum aaa, but this service's base is other@1 (file:///ckpt/other/1) checksum bbb`},
		{"a full model as an adapter", "model://shake@1", "model://shake@2",
			`task.builtin.adapters[0].uri: "model://shake@2" is shake@2, which the catalog records as a full model, not a LoRA adapter`},
		{"a base the catalog does not name: the replicas check", "file:///ckpt/elsewhere", "model://bard", ""},
		{"a parent given as a checkpoint, the same", "file:///ckpt/raw-base", "model://rawkid", ""},
		{"a parent given as a checkpoint, a catalog base: the replicas check", "model://shake@1", "model://rawkid", ""},
		{"no lineage", "model://shake@1", "model://orphan", ""},
		{"a parent no longer in the catalog", "model://shake@1", "model://lost", ""},
		{"a checkpoint, not a catalog version", "model://shake@2", "file:///ckpt/bard/1", ""},
	}
	for _, tc := range cases {
		_, err := c.SubmitJob(ctx, service(tc.base, tc.adapter))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (code(err) != 400 || !strings.Contains(fmt.Sprint(err), tc.want)):
			t.Errorf("%s: %d %v\nwant 400 with %q", tc.name, code(err), err, tc.want)
		}
	}

	// ark job adapter add: the service's base is known from its record
	// (its spec holds the resolved checkpoint).
	sub, err := c.SubmitJob(ctx, []byte(`{"name":"v2","kind":"inference","replicas":1,"resources":{"gpus":1},"task":{"driver":"builtin","builtin":{"base":"model://shake@2"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AddServiceAdapter(ctx, sub.ID, api.ServiceAdapterRequest{Name: "bard", URI: "model://bard@1"})
	if want := `task.builtin.adapters[0].uri: "model://bard@1" is bard@1, a LoRA adapter of base shake@1 (file:///ckpt/shake/1) checksum aaa, but this service's base is shake@2 (file:///ckpt/shake/2)`; code(err) != 400 || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("add an adapter of another base: %d %v\nwant 400 with %q", code(err), err, want)
	}
	if _, err := c.AddServiceAdapter(ctx, sub.ID, api.ServiceAdapterRequest{Name: "kid", URI: "model://rawkid"}); err != nil {
		t.Errorf("add an adapter the catalog cannot settle: %v", err)
	}
	j, _, err := c.Job(ctx, sub.ID, 0, 0)
	if err != nil || j.Version != 1 || len(j.Spec.Task.Builtin.Adapters) != 1 || j.Spec.Task.Builtin.Adapters[0].Name != "kid" {
		t.Errorf("after the adds: %v version %d adapters %+v, want version 1 with kid alone", err, j.Version, j.Spec.Task.Builtin.Adapters)
	}
}
