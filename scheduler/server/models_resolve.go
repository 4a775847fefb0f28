package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ark-sched/ark/internal/editdist"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// resolveModels replaces the catalog references (model://NAME[@V]) of a
// submitted spec with the checkpoints of the versions they name, fills in
// the builtin model from a catalog base's architecture, and returns what
// it resolved, for the job's record. A reference names a model of the
// job's namespace or else a public one. Every problem is reported with
// its field path, all at once.
func resolveModels(snap *state.Snapshot, js *spec.Job) ([]api.ModelRef, error) {
	b := js.Task.Builtin
	var refs []api.ModelRef
	var es spec.Errors
	add := func(path, format string, args ...any) {
		es = append(es, spec.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for i, f := range spec.CheckpointFields(b) {
		if !spec.IsModelRef(f.Loc) {
			continue
		}
		ref, err := spec.ParseModelRef(f.Loc)
		if err != nil {
			add(f.Path, "%q: %v", f.Loc, err)
			continue
		}
		m, err := findModel(snap, js.Namespace, ref.Name)
		if err != nil {
			add(f.Path, "%q: %v", f.Loc, err)
			continue
		}
		v, err := pickVersion(m, ref.Version)
		if err != nil {
			add(f.Path, "%q: %v", f.Loc, err)
			continue
		}
		// The first base item is what a finetune trains and a service
		// serves: an adapter alone is neither.
		if i == 0 && strings.HasPrefix(f.Path, "task.builtin.base") && v.Adapter && js.Kind != spec.KindEval {
			add(f.Path, "%q is a LoRA adapter (of %s): serve it under task.builtin.adapters with its base as base", f.Loc, parentOf(v))
			continue
		}
		if i == 0 && strings.HasPrefix(f.Path, "task.builtin.base") {
			// A model with no preset (an imported GPT-2) runs with the
			// checkpoint's own shape: model stays empty.
			switch p := m.Arch.Preset; {
			case b.Model == "":
				b.Model = p
			case p != "" && b.Model != p:
				add("task.builtin.model", "is %q but the base %s is a %s", b.Model, f.Loc, p)
			}
		}
		f.Set(v.URI)
		refs = append(refs, api.ModelRef{Field: f.Path, Ref: f.Loc, Namespace: m.Namespace, Model: m.Name, Version: v.Version, URI: v.URI})
	}
	if len(es) > 0 {
		return nil, es
	}
	return refs, nil
}

// findModel is the model ns names name: its own, else the one public
// model of that name.
func findModel(snap *state.Snapshot, ns, name string) (*api.Model, error) {
	if m := snap.Model(nil, ns, name); m != nil {
		return m, nil
	}
	var public []*api.Model
	var names []string
	for _, m := range snap.Models(nil) {
		if m.Namespace == ns || m.Public {
			names = append(names, m.Name)
		}
		if m.Public && m.Name == name {
			public = append(public, m)
		}
	}
	switch len(public) {
	case 1:
		return public[0], nil
	case 0:
		msg := fmt.Sprintf("no model %q in namespace %q nor among the public models (ark model list)", name, ns)
		if s := closest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return nil, fmt.Errorf("%s", msg)
	}
	var owners []string
	for _, m := range public {
		owners = append(owners, m.Namespace)
	}
	return nil, fmt.Errorf("public models named %q exist in namespaces %s: register the one you mean in namespace %q", name, strings.Join(owners, ", "), ns)
}

func pickVersion(m *api.Model, version int) (*api.ModelVersion, error) {
	if len(m.Versions) == 0 {
		return nil, fmt.Errorf("model %s has no versions yet", m.Name)
	}
	if version == 0 {
		return &m.Versions[len(m.Versions)-1], nil
	}
	if i := slices.IndexFunc(m.Versions, func(v api.ModelVersion) bool { return v.Version == version }); i >= 0 {
		return &m.Versions[i], nil
	}
	var have []string
	for _, v := range m.Versions {
		have = append(have, fmt.Sprint(v.Version))
	}
	return nil, fmt.Errorf("model %s has no version %d (its versions: %s)", m.Name, version, strings.Join(have, ", "))
}

func parentOf(v *api.ModelVersion) string {
	if v.Lineage != nil && v.Lineage.Parent != "" {
		return v.Lineage.Parent
	}
	return "its base"
}

// closest is the name nearest to s when it is a likely typo.
func closest(s string, names []string) string {
	best, bestD := "", 4
	for _, n := range names {
		if d := editdist.Levenshtein(s, n); d < bestD && 2*d < len(s) {
			best, bestD = n, d
		}
	}
	return best
}
