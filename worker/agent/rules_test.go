package agent

import (
	"encoding/json"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestRulesOf: the live part of an allocation's spec is its version's
// rules and adapters, as empty lists (never null) when it has none, so a
// builtin server told "none" drops what it served.
func TestRulesOf(t *testing.T) {
	rule := spec.Rule{ID: "r", On: spec.RuleInput, Keywords: []string{"x"}, Action: spec.RuleBlock}
	legal := spec.Adapter{Name: "legal", URI: "file:///c/legal", Pinned: true}
	cases := []struct {
		name string
		task spec.Task
		want string
	}{
		{"exec task", spec.Task{Driver: spec.DriverExec}, `{"version":3,"rules":[],"adapters":[]}`},
		{"builtin, nothing live", spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny"}}, `{"version":3,"rules":[],"adapters":[]}`},
		{"adapters only", spec.Task{Builtin: &spec.BuiltinTask{Adapters: []spec.Adapter{legal}}},
			`{"version":3,"rules":[],"adapters":[{"name":"legal","uri":"file:///c/legal","pinned":true}]}`},
		{"both", spec.Task{Builtin: &spec.BuiltinTask{Rules: []spec.Rule{rule}, Adapters: []spec.Adapter{{Name: "a", URI: "file:///c/a"}}}},
			`{"version":3,"rules":[{"id":"r","stage":"input","keywords":["x"],"action":"block"}],"adapters":[{"name":"a","uri":"file:///c/a"}]}`},
	}
	for _, tc := range cases {
		got, err := json.Marshal(rulesOf(&api.Allocation{JobVersion: 3, Task: tc.task}))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
