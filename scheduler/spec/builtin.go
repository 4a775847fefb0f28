package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ark-sched/ark/internal/editdist"
)

// BuiltinModels are the model names the builtin runtime knows: worker/
// train's presets (a test in cmd/ark, which links both, keeps the lists
// equal; the spec package stays free of the trainer). A spec naming
// another is an error at submit, not a run that fails on a node.
var BuiltinModels = []string{"gpt-small", "gpt-test", "gpt-tiny"}

// CheckpointSchemes are the stores a builtin task's base may name with a
// URI (storage/stores); anything else is a path on the nodes.
var CheckpointSchemes = []string{"file", "s3"}

// validateBuiltinFields checks what can be checked of a builtin task
// without the nodes: the model is a builtin one, the data is a file (the
// runtime reads it from the node's disk, not from a store), and each base
// URI names a checkpoint store Ark can open.
func validateBuiltinFields(b *BuiltinTask, add func(path, format string, args ...any)) {
	if m := strings.TrimSpace(b.Model); m != "" && !slices.Contains(BuiltinModels, m) {
		msg := fmt.Sprintf("unknown model %q; the builtin models are %s", m, strings.Join(BuiltinModels, ", "))
		if s := closestName(m, BuiltinModels); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		add("task.builtin.model", "%s", msg)
	}
	if scheme, _, ok := strings.Cut(b.Data, "://"); ok {
		add("task.builtin.data", "must be a text file on the nodes (a path), not a URI (%s://...)", scheme)
	}
	if b.Base == "" {
		return
	}
	for i, part := range strings.Split(b.Base, ",") {
		part = strings.TrimSpace(part)
		path := "task.builtin.base"
		if strings.Contains(b.Base, ",") {
			path = fmt.Sprintf("task.builtin.base[%d]", i)
		}
		if part == "" {
			add(path, "is empty; separate checkpoints with single commas")
			continue
		}
		if scheme, _, ok := strings.Cut(part, "://"); ok && scheme != "model" && !slices.Contains(CheckpointSchemes, scheme) {
			add(path, "%q: %s:// is no checkpoint store; use a path on the nodes, file://, s3:// or a catalog model (model://NAME@VERSION)", part, scheme)
		}
	}
}

// closestName is the name in names nearest to s when it is a likely typo
// (edit distance at most 3, and less than half of s).
func closestName(s string, names []string) string {
	best, bestD := "", 4
	for _, n := range names {
		if d := editdist.Levenshtein(strings.ToLower(s), n); d < bestD && 2*d < len(s) {
			best, bestD = n, d
		}
	}
	return best
}
