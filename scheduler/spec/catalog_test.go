package spec

import (
	"strings"
	"testing"
)

func TestParseModelRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ModelRef
		err  string
	}{
		{"shake", ModelRef{Name: "shake"}, ""},
		{"model://shake@3", ModelRef{Name: "shake", Version: 3}, ""},
		{" model://gpt2-small.v1@12 ", ModelRef{Name: "gpt2-small.v1", Version: 12}, ""},
		{"model://shake@0", ModelRef{}, `version of "shake" must be a number >= 1`},
		{"shake@latest", ModelRef{}, `version of "shake" must be a number >= 1 (NAME@3), got "latest"`},
		{"model://", ModelRef{}, "model name is empty"},
		{"../x", ModelRef{}, "model name must be 1-63 lowercase"},
		{"a..b", ModelRef{}, "model name must be"},
		{"Shake", ModelRef{}, "model name must be"},
	} {
		got, err := ParseModelRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseModelRef(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseModelRef(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateCatalogFields(t *testing.T) {
	head := "name: j\nresources: {gpus: 1}\n"
	for _, tc := range []struct {
		name, body, err string
	}{
		{"a catalog base brings the model", "kind: inference\ntask: {driver: builtin, builtin: {base: model://shake@2}}", ""},
		{"a path base brings its shape", "kind: inference\ntask: {driver: builtin, builtin: {base: /ckpt/x}}", ""},
		{"no base needs the model", "kind: finetune\ntask: {driver: builtin, builtin: {data: /d}}", "task.builtin.model: is required without a base"},
		{"a bad reference", "kind: eval\ntask: {driver: builtin, builtin: {model: gpt-tiny, data: /d, base: \"/c/a,model://x@v2\"}}", `task.builtin.base[1]: "model://x@v2": version of "x" must be a number`},
		{"a bad adapter reference", "kind: inference\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: /c/a, adapters: [{name: a, uri: \"model://A\"}]}}", `task.builtin.adapters[0].uri: "model://A": model name must be`},
		{"output on a finetune", "kind: finetune\ntask: {driver: builtin, builtin: {base: model://shake, data: /d}}\noutput: {model: shake}", ""},
		{"output on an eval", "kind: eval\ntask: {driver: builtin, builtin: {base: model://shake, data: /d}}\noutput: {model: shake}", "output: only finetune jobs register a result"},
		{"output without a name", "kind: finetune\ntask: {driver: builtin, builtin: {base: model://shake, data: /d}}\noutput: {description: x}", "output.model: is empty"},
	} {
		_, err := Parse([]byte(head + tc.body + "\n"))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestCheckpointFieldsSet(t *testing.T) {
	b := &BuiltinTask{Base: "model://a, /c/b,model://c@2", Adapters: []Adapter{{Name: "x", URI: "model://d"}}}
	fields := CheckpointFields(b)
	var paths []string
	for _, f := range fields {
		paths = append(paths, f.Path+"="+f.Loc)
	}
	if got := strings.Join(paths, " "); got != "task.builtin.base[0]=model://a task.builtin.base[1]=/c/b task.builtin.base[2]=model://c@2 task.builtin.adapters[0].uri=model://d" {
		t.Fatalf("fields %s", got)
	}
	fields[0].Set("file:///a")
	fields[2].Set("file:///c/2")
	fields[3].Set("s3://b/d")
	if b.Base != "file:///a, /c/b,file:///c/2" || b.Adapters[0].URI != "s3://b/d" {
		t.Fatalf("after Set: base %q adapter %q", b.Base, b.Adapters[0].URI)
	}
}
