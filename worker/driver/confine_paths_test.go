package driver

import (
	"slices"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TestConfinePaths: a task reads its program's tree, what its builtin spec
// names (the paths spec.ReadRoots gives, the scheduler's rule for adapters
// changed in place) and its checkpoint key; it writes its local
// checkpoint store's job directory.
func TestConfinePaths(t *testing.T) {
	b := &spec.BuiltinTask{Model: "gpt-tiny", Base: "/models/base/gpt", Data: "s3://bucket/data",
		Adapters: []spec.Adapter{{Name: "legal", URI: "file:///stores/a/legal/40"}}}
	cfg := TaskConfig{Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: b},
		Env: []string{"ARK_CHECKPOINT_URI=file:///ckpt/nlp/job-1", "ARK_CHECKPOINT_KEY_FILE=/var/ark/alloc/key"}}
	read, write := confinePaths(cfg, "/opt/venv/bin/ark")
	wantRead := append([]string{"/opt/venv/bin", "/opt/venv"}, spec.ReadRoots(b)...)
	wantRead = append(wantRead, "/var/ark/alloc/key")
	if !slices.Equal(read, wantRead) {
		t.Errorf("read = %q, want %q", read, wantRead)
	}
	if want := []string{"/models/base", "/models/base/gpt", "/stores/a", "/stores/a/legal/40"}; !slices.Equal(spec.ReadRoots(b), want) {
		t.Errorf("spec.ReadRoots = %q, want %q", spec.ReadRoots(b), want)
	}
	if want := []string{"/ckpt/nlp"}; !slices.Equal(write, want) {
		t.Errorf("write = %q, want %q", write, want)
	}
}
