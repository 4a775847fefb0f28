package driver

import (
	"slices"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TestConfinePaths: a task reads its program's tree, its checkpoint key
// and what its builtin spec names (the paths spec.ReadRoots gives, the
// scheduler's rule for adapters changed in place); it writes its local
// checkpoint store's namespace directory.
func TestConfinePaths(t *testing.T) {
	b := &spec.BuiltinTask{Model: "gpt-tiny", Base: "/models/base/gpt", Data: "s3://bucket/data",
		Adapters: []spec.Adapter{{Name: "legal", URI: "file:///stores/a/legal/40"}}}
	cfg := TaskConfig{Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: b},
		Env: []string{"ARK_CHECKPOINT_URI=file:///ckpt/nlp/job-1", "ARK_CHECKPOINT_KEY_FILE=/var/ark/alloc/key"}}
	read, write := confinePaths(cfg, "/opt/venv/bin/ark")
	wantRead := []string{"/opt/venv/bin", "/opt/venv", "/var/ark/alloc/key", "/models/base", "/models/base/gpt", "/stores/a", "/stores/a/legal/40"}
	if !slices.Equal(read, wantRead) {
		t.Errorf("read = %q, want %q", read, wantRead)
	}
	if want := []string{"/ckpt/nlp"}; !slices.Equal(write, want) {
		t.Errorf("write = %q, want %q", write, want)
	}
}

// TestConfinePathsOtherNamespaces reproduces a tenant reading every
// namespace's checkpoints: a service of namespace nlp whose base is its
// own job's latest checkpoint, named STORE/NAMESPACE/JOB
// (file:///ckpt/nlp/5, which its storage policy allows), read as step 5
// of job "nlp" in store /ckpt, and the sandbox opened /ckpt, the store of
// every namespace. It must open that checkpoint's path alone.
func TestConfinePathsOtherNamespaces(t *testing.T) {
	for _, base := range []string{"file:///ckpt/nlp/5", "/ckpt/nlp", "/ckpt/nlp/../other/7"} {
		b := &spec.BuiltinTask{Model: "gpt-tiny", Base: base}
		cfg := TaskConfig{Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: b},
			Env: []string{"ARK_CHECKPOINT_URI=file:///ckpt/nlp/job-9"}}
		read, _ := confinePaths(cfg, "ark")
		if want := []string{spec.LocalPath(base)}; !slices.Equal(read, want) {
			t.Errorf("base %s: read = %q, want %q", base, read, want)
		}
	}
	// Its own namespace's store is opened as before, so an adapter added
	// there later is read in place.
	b := &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///ckpt/nlp/job-3/000000000050"}
	cfg := TaskConfig{Task: spec.Task{Driver: spec.DriverBuiltin, Builtin: b}, Env: []string{"ARK_CHECKPOINT_URI=file:///ckpt/nlp/job-9"}}
	if read, _ := confinePaths(cfg, "ark"); !slices.Equal(read, []string{"/ckpt/nlp", "/ckpt/nlp/job-3/000000000050"}) {
		t.Errorf("own namespace: read = %q", read)
	}
}
