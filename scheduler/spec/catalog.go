package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Catalog references: where a builtin task names a checkpoint (its base,
// each of an eval job's candidates, a served adapter's uri) it may name a
// catalog model instead, model://NAME@VERSION or model://NAME for the
// newest version. The servers resolve references at submission against
// the models the job's namespace may read, write the version's checkpoint
// URI into the spec and record what they resolved (api.Job.Models).

// ModelScheme prefixes a catalog reference.
const ModelScheme = "model://"

// modelNameRE is what a catalog model's name may be: it travels in URL
// paths (/v1/models/NAME) and in references.
var modelNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// ValidModelName reports why s may not name a catalog model, or nil.
func ValidModelName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case !modelNameRE.MatchString(s) || strings.Contains(s, ".."):
		return fmt.Errorf("must be 1-63 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit, got %q", s)
	}
	return nil
}

// ModelRef is a parsed catalog reference; Version 0 is the newest.
type ModelRef struct {
	Name    string
	Version int
}

func (r ModelRef) String() string {
	if r.Version == 0 {
		return r.Name
	}
	return r.Name + "@" + strconv.Itoa(r.Version)
}

// IsModelRef reports whether a checkpoint location is a catalog reference.
func IsModelRef(loc string) bool { return strings.HasPrefix(strings.TrimSpace(loc), ModelScheme) }

// ParseModelRef reads NAME[@VERSION], with or without the model:// prefix.
func ParseModelRef(s string) (ModelRef, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), ModelScheme)
	name, ver, hasVer := strings.Cut(s, "@")
	if err := ValidModelName(name); err != nil {
		return ModelRef{}, fmt.Errorf("model name %v", err)
	}
	r := ModelRef{Name: name}
	if hasVer {
		v, err := strconv.Atoi(ver)
		if err != nil || v < 1 {
			return ModelRef{}, fmt.Errorf("version of %q must be a number >= 1 (NAME@3), got %q", name, ver)
		}
		r.Version = v
	}
	return r, nil
}

// CheckpointField is one place a builtin task names a checkpoint.
type CheckpointField struct {
	// Path is the field's path ("task.builtin.base[1]"), Loc its value.
	Path, Loc string
	// set writes a new value into the spec.
	set func(string)
}

// Set replaces the field's value in the spec it was read from.
func (f CheckpointField) Set(v string) { f.set(v) }

// CheckpointFields lists every place b names a checkpoint, in order: each
// item of base (comma-separated), then each adapter's uri.
func CheckpointFields(b *BuiltinTask) []CheckpointField {
	if b == nil {
		return nil
	}
	var out []CheckpointField
	if strings.TrimSpace(b.Base) != "" {
		parts := strings.Split(b.Base, ",")
		for i := range parts {
			path := "task.builtin.base"
			if len(parts) > 1 {
				path = fmt.Sprintf("task.builtin.base[%d]", i)
			}
			out = append(out, CheckpointField{Path: path, Loc: strings.TrimSpace(parts[i]), set: func(v string) {
				parts[i] = v
				b.Base = strings.Join(parts, ",")
			}})
		}
	}
	for i := range b.Adapters {
		a := &b.Adapters[i]
		out = append(out, CheckpointField{Path: fmt.Sprintf("task.builtin.adapters[%d].uri", i), Loc: a.URI, set: func(v string) { a.URI = v }})
	}
	return out
}

// validateCatalog checks the catalog references and spec.output.
func validateCatalog(j *Job, add func(path, format string, args ...any)) {
	if b := j.Task.Builtin; b != nil {
		for _, f := range CheckpointFields(b) {
			if IsModelRef(f.Loc) {
				if _, err := ParseModelRef(f.Loc); err != nil {
					add(f.Path, "%q: %v", f.Loc, err)
				}
			}
		}
	}
	if o := j.Output; o != nil {
		if j.Kind != KindFinetune {
			add("output", "only finetune jobs register a result in the catalog, this is a %s job", j.Kind)
		}
		if err := ValidModelName(o.Model); err != nil {
			add("output.model", "%v", err)
		}
	}
}

// ValidLabel reports why s may not be a name, namespace or queue label.
func ValidLabel(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > 63:
		return fmt.Errorf("must be at most 63 characters, got %d", len(s))
	case !labelRE.MatchString(s):
		return fmt.Errorf("must be lowercase letters, digits and '-', starting and ending with a letter or digit, got %q", s)
	}
	return nil
}

// CheckCheckpointLocation reports why loc cannot name a checkpoint: a
// store Ark cannot open, or a relative path (the nodes have no working
// directory in common with whoever wrote it).
func CheckCheckpointLocation(loc string) error {
	if scheme, _, ok := strings.Cut(loc, "://"); ok {
		if !slices.Contains(CheckpointSchemes, scheme) {
			return fmt.Errorf("%q: %s:// is no checkpoint store; use file://, s3:// or an absolute path", loc, scheme)
		}
		return nil
	}
	if !strings.HasPrefix(loc, "/") {
		return fmt.Errorf("%q is a relative path; use file://, s3:// or an absolute path", loc)
	}
	return nil
}
