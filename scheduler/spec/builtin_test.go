package spec

import (
	"strings"
	"testing"
)

func TestBuiltinFieldsValidated(t *testing.T) {
	head := "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask:\n  driver: builtin\n  builtin: "
	cases := []struct {
		name, builtin, want string
	}{
		{"unknown model", `{model: gpt-huge, data: /d.txt}`, `task.builtin.model: unknown model "gpt-huge"; the builtin models are gpt-small, gpt-test, gpt-tiny`},
		{"typo", `{model: gpt-tinny, data: /d.txt}`, `task.builtin.model: unknown model "gpt-tinny"; the builtin models are gpt-small, gpt-test, gpt-tiny (did you mean "gpt-tiny"?)`},
		{"data as a URI", `{model: gpt-tiny, data: "s3://b/d.txt"}`, `task.builtin.data: must be a text file on the nodes (a path), not a URI (s3://...)`},
		{"base scheme", `{model: gpt-tiny, data: /d.txt, base: "http://x/ckpt/ft/10"}`, `task.builtin.base: "http://x/ckpt/ft/10": http:// is no checkpoint store; use a path on the nodes, file://, s3:// or a catalog model`},
		{"every problem at once", `{model: gpt-huge, data: "gs://b/d"}`, `task.builtin.model: unknown model "gpt-huge"`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(head + tc.builtin + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	_, err := Parse([]byte(head + `{model: gpt-huge, data: "gs://b/d"}` + "\n"))
	if n := strings.Count(err.Error(), "task.builtin."); n != 2 {
		t.Errorf("want both the model and the data reported in one pass, got %d: %v", n, err)
	}
	eval := "name: ev\nkind: eval\nresources: {gpus: 1}\ntask:\n  driver: builtin\n  builtin: {model: gpt-tiny, data: /d.txt, base: \"/b1,,ftp://x/j/1\"}\n"
	_, err = Parse([]byte(eval))
	for _, w := range []string{"task.builtin.base[1]: is empty", `task.builtin.base[2]: "ftp://x/j/1": ftp:// is no checkpoint store`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("eval bases: error %v, want %q", err, w)
		}
	}
	ok := head + `{model: gpt-tiny, data: /d.txt, base: "s3://b/ckpt/ft?region=x"}` + "\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("a valid builtin spec: %v", err)
	}
}
