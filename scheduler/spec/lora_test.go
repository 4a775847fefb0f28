package spec

import "testing"

func TestLoRASpecs(t *testing.T) {
	ft, err := Parse([]byte("name: ft\nkind: finetune\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: d.txt, base: file:///c/base, lora: {rank: 8, alpha: 16, targets: [attn, mlp]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := ft.Task.Builtin.LoRA; l == nil || l.Rank != 8 || l.Alpha != 16 || len(l.Targets) != 2 {
		t.Fatalf("lora %+v", ft.Task.Builtin.LoRA)
	}
	srv, err := Parse([]byte("name: srv\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: file:///c/base, adapters: [{name: legal, uri: file:///c/legal}, {name: med.v2, uri: file:///c/med}]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := srv.Task.Builtin.Adapters; len(a) != 2 || a[1].Name != "med.v2" || a[0].URI != "file:///c/legal" {
		t.Fatalf("adapters %+v", a)
	}
}
