package spec

import (
	"encoding/json"
	"testing"
)

// TestRemovePath: the decoder's backstop removes the value a type error
// names by its dotted path, and says when the path leads nowhere it can
// follow, so decoding goes on without the bad value only when it is gone.
func TestRemovePath(t *testing.T) {
	tests := []struct {
		doc, path, want string
		ok              bool
	}{
		{`{"replicas":"two","name":"x"}`, "replicas", `{"name":"x"}`, true},
		{`{"resources":{"gpus":"x","cpu":"1"}}`, "resources.gpus", `{"resources":{"cpu":"1"}}`, true},
		{`{"task":{"exec":{"command":[1]}}}`, "task.exec.command", `{"task":{"exec":{}}}`, true},
		{`{"resources":{"gpus":1}}`, "resources.memory", `{"resources":{"gpus":1}}`, false},
		{`{"resources":[1]}`, "resources.gpus", `{"resources":[1]}`, false},
	}
	for _, tt := range tests {
		var doc any
		if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
			t.Fatal(err)
		}
		ok := removePath(doc, tt.path)
		got, _ := json.Marshal(doc)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("removePath(%s, %q) = %v, %s; want %v, %s", tt.doc, tt.path, ok, got, tt.ok, tt.want)
		}
	}
}
