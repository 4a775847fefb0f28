package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// A LoRA adapter is only of use on the base it was trained on: its
// checkpoint's manifest records that base's parameter checksum, and a
// replica refuses to load it on another (worker/train CheckBase). The
// servers never open checkpoints, but for an adapter named from the
// catalog (model://NAME[@V]) they know what it is and, from its lineage,
// what it was trained on. adapterBaseErrors uses that to refuse, when the
// spec is checked, what every replica would refuse later: a catalog
// version that is not an adapter at all, and an adapter whose recorded
// base is certainly not the service's. Where the catalog does not settle
// it (no lineage, a base given as a checkpoint the catalog does not
// name), the adapter is taken and the replicas decide; ark job adapter
// add waits for their verdict.

// catalogBase is what one side of the comparison knows of a base: its
// checkpoint, and when the catalog names it, which version it is and its
// manifest's checksum (when registered).
type catalogBase struct {
	uri      string
	version  string // "NAME@V" of the catalog, or ""
	checksum string
}

func (b catalogBase) String() string {
	var s string
	switch {
	case b.version != "" && b.uri != "":
		s = b.version + " (" + b.uri + ")"
	case b.version != "":
		s = b.version
	default:
		s = b.uri
	}
	if b.checksum != "" {
		s += " checksum " + b.checksum
	}
	return s
}

// differs reports whether a and b are certainly different weights: not
// the same checkpoint, and either both checksums known and unequal, or
// both catalog versions and not the same one (a version's checkpoint
// does not change). Anything less certain is left to the replicas.
func (a catalogBase) differs(b catalogBase) bool {
	switch {
	case a.uri != "" && a.uri == b.uri:
		return false
	case a.checksum != "" && b.checksum != "":
		return a.checksum != b.checksum
	case a.version != "" && b.version != "":
		return a.version != b.version
	}
	return false
}

// adapterBaseErrors checks the catalog adapters among refs (the
// references of js's adapters that were resolved: at submission all of
// them, at ark job adapter add the new one) against js's base, whose own
// reference, if the catalog named it, is baseRef. js is resolved: its
// base is a checkpoint.
func adapterBaseErrors(snap *state.Snapshot, js *spec.Job, baseRef *api.ModelRef, refs []api.ModelRef) spec.Errors {
	b := js.Task.Builtin
	if b == nil || len(b.Adapters) == 0 || strings.Contains(b.Base, ",") {
		return nil
	}
	base := catalogBase{uri: strings.TrimSpace(b.Base)}
	if baseRef != nil {
		base.version = baseRef.Model + "@" + strconv.Itoa(baseRef.Version)
		if v := catalogVersion(snap, baseRef.Namespace, baseRef.Model, baseRef.Version); v != nil {
			base.checksum = v.Checksum
		}
	}
	var es spec.Errors
	for _, ref := range refs {
		if !strings.HasPrefix(ref.Field, "task.builtin.adapters[") {
			continue
		}
		v := catalogVersion(snap, ref.Namespace, ref.Model, ref.Version)
		if v == nil {
			continue
		}
		name := ref.Model + "@" + strconv.Itoa(ref.Version)
		if !v.Adapter {
			es = append(es, spec.FieldError{Path: ref.Field, Msg: fmt.Sprintf(
				"%q is %s, which the catalog records as a full model, not a LoRA adapter: serve it as a service's base (task.builtin.base), or register the adapter's checkpoint with ark model register --adapter --parent BASE",
				ref.Ref, name)})
			continue
		}
		parent, ok := parentBase(snap, ref.Namespace, v)
		if !ok || !parent.differs(base) {
			continue
		}
		es = append(es, spec.FieldError{Path: ref.Field, Msg: fmt.Sprintf(
			"%q is %s, a LoRA adapter of base %s, but this service's base is %s: an adapter only works on the base it was trained on (serve it on a service of its base, or name its checkpoint instead of the catalog version to have the replicas check its manifest)",
			ref.Ref, name, parent, base)})
	}
	return es
}

// parentBase is the base an adapter version's lineage names: a catalog
// version (NAME@V, looked up as a job of ns would name it) or a
// checkpoint. ok is false when the lineage names none, or a version the
// catalog no longer has (nothing is known of its weights then).
func parentBase(snap *state.Snapshot, ns string, v *api.ModelVersion) (catalogBase, bool) {
	if v.Lineage == nil || v.Lineage.Parent == "" {
		return catalogBase{}, false
	}
	p := v.Lineage.Parent
	if strings.Contains(p, "://") || strings.HasPrefix(p, "/") {
		return catalogBase{uri: p}, true
	}
	ref, err := spec.ParseModelRef(p)
	if err != nil || ref.Version == 0 {
		return catalogBase{}, false
	}
	m, err := findModel(snap, ns, ref.Name)
	if err != nil {
		return catalogBase{}, false
	}
	pv, err := pickVersion(m, ref.Version)
	if err != nil {
		return catalogBase{}, false
	}
	return catalogBase{uri: pv.URI, version: m.Name + "@" + strconv.Itoa(pv.Version), checksum: pv.Checksum}, true
}

// catalogVersion is version v (resolved: never 0) of model ns/name, or
// nil.
func catalogVersion(snap *state.Snapshot, ns, name string, v int) *api.ModelVersion {
	m := snap.Model(nil, ns, name)
	if m == nil {
		return nil
	}
	mv, err := pickVersion(m, v)
	if err != nil {
		return nil
	}
	return mv
}

// baseRefOf is the catalog reference of a service's base among refs, or
// nil when its base was given as a checkpoint.
func baseRefOf(refs []api.ModelRef) *api.ModelRef {
	for i := range refs {
		if refs[i].Field == "task.builtin.base" {
			return &refs[i]
		}
	}
	return nil
}
