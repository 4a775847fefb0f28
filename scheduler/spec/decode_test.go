package spec

import (
	"errors"
	"testing"
)

// TestParseReportsEveryProblem: unknown fields and values of the wrong type
// do not hide what validation finds in the rest of the spec, and a problem
// the decoder already named is not reported a second time by validation.
func TestParseReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string // every problem, in order
	}{
		{"unknown field beside invalid values",
			"name: x\nkind: train\nresources: {gpus: -1}\ntask: {driver: exec}\nbogus: 1\n",
			[]string{
				"bogus: unknown field",
				`kind: must be one of finetune, eval, inference, batch, got "train"`,
				"resources.gpus: must be >= 1, got -1",
				"task.exec: is required when task.driver is exec",
			}},
		{"type errors, a typo and invalid values together",
			"name: x\nkind: batch\nreplicas: two\nresources: {GPUs: -1, cpu: -3}\ntask: {driver: exec, exec: {command: [a, 3]}}\nrestart: {backoff: soon}\n",
			[]string{
				`replicas: must be an integer, got string "two"`,
				`resources.GPUs: unknown field (did you mean "gpus"?)`,
				`restart.backoff: must be a duration such as "30s" or "2m", got string "soon"`,
				`task.exec.command[1]: must be a string, got number 3 (quote it: "3")`,
				// The typo's value is validated under the name it meant.
				"resources.gpus: must be >= 1, got -1",
				"resources.cpu: must be > 0, got -3",
			}},
		{"a typo alone does not make its field missing",
			"name: x\nkind: batch\nresources: {GPUs: 2}\ntask: {driver: exec, exec: {command: [a]}}\n",
			[]string{`resources.GPUs: unknown field (did you mean "gpus"?)`}},
		{"a dropped value does not make its sibling required",
			"name: x\nkind: batch\nresources: {gpuMilli: 500m}\ntask: {driver: exec, exec: {command: [a]}}\n",
			[]string{`resources.gpuMilli: must be an integer, got string "500m"`}},
		{"a mapping where a list belongs, and a list where a mapping belongs",
			"name: x\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: {a: b}, env: [A]}}\n",
			[]string{
				"task.exec.command: must be a list, got a mapping",
				"task.exec.env: must be a mapping, got a list",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := Parse([]byte(tt.spec))
			if job != nil || err == nil {
				t.Fatalf("Parse accepted it: %+v", job)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T %v is not a spec.Errors", err, err)
			}
			if len(es) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(es), len(tt.want), err)
			}
			for i, w := range tt.want {
				if es[i].Error() != w {
					t.Errorf("problem %d: %q, want %q", i, es[i].Error(), w)
				}
			}
			// Decode alone reports the decoding problems, and only those.
			if _, derr := Decode([]byte(tt.spec)); derr == nil {
				t.Errorf("Decode accepted it")
			}
		})
	}
}
