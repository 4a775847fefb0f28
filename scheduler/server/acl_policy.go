package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// ACL policies: a YAML or JSON document, decoded as strictly as job specs
// (unknown fields, wrong types and repeated keys are errors naming the
// field path), then validated. What a policy means at a request is in
// acl_enforce.go.
//
//	name: nlp-team
//	namespaces:
//	  - name: nlp
//	    capabilities: [submit, read, cancel, logs]
//	    queues: [default, nlp]      # empty: only "default"
//	    maxPriority: 100            # 0: the default priority (50)
//	    limits: {jobs: 50, pendingJobs: 20, gpus: 64}
//	    storage: {read: ["file:///data/nlp"], write: ["s3://ckpt/nlp"]}
//	    models: {read: [llama-8b], write: []}

// MaxPolicyBytes bounds a policy document.
const MaxPolicyBytes = 64 << 10

var (
	policyLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	schemeRE      = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	capabilities  = []string{api.CapSubmit, api.CapRead, api.CapCancel, api.CapLogs, api.CapUpdate, api.CapServices}
)

// DecodePolicy parses and validates a policy document. Field problems are
// returned as spec.Errors (a 400 naming each field).
func DecodePolicy(data []byte) (*api.ACLPolicy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("policy is %d bytes, more than the limit of %d", len(data), MaxPolicyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("policy is empty")
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("malformed policy: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("malformed policy: %w", err)
	}
	var es spec.Errors
	checkShape(doc, reflect.TypeFor[api.ACLPolicy](), "", &es)
	if len(es) > 0 {
		return nil, es
	}
	var p api.ACLPolicy
	if err := json.Unmarshal(js, &p); err != nil {
		return nil, fmt.Errorf("malformed policy: %w", err)
	}
	if err := ValidatePolicy(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// checkShape walks a decoded document against the type it must fill and
// records unknown fields and values of the wrong type with their paths
// (encoding/json names neither well enough to fix a file by).
func checkShape(v any, t reflect.Type, path string, es *spec.Errors) {
	add := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "(top level)"
		}
		*es = append(*es, spec.FieldError{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	if v == nil {
		return // null leaves the zero value
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			add("must be a mapping")
			return
		}
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok || k == "createIndex" || k == "modifyIndex" {
				add("unknown field %q", k)
				continue
			}
			checkShape(m[k], f.Type, joinPath(path, k), es)
		}
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			add("must be a list")
			return
		}
		for i, item := range items {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), es)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			add("must be a string")
		}
	case reflect.Int:
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			add("must be an integer")
		}
	}
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// ValidatePolicy checks a decoded policy and reports every problem.
func ValidatePolicy(p *api.ACLPolicy) error {
	var es spec.Errors
	add := func(path, format string, args ...any) {
		es = append(es, spec.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	label := func(path, v string) {
		switch {
		case v == "":
			add(path, "is required")
		case len(v) > 63 || !policyLabelRE.MatchString(v):
			add(path, "must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, got %q", v)
		}
	}
	label("name", p.Name)
	if len(p.Namespaces) == 0 {
		add("namespaces", "is required (the namespaces this policy grants, with their capabilities)")
	}
	seen := map[string]bool{}
	for i, ns := range p.Namespaces {
		at := fmt.Sprintf("namespaces[%d]", i)
		label(at+".name", ns.Name)
		if seen[ns.Name] {
			add(at+".name", "namespace %q is listed twice", ns.Name)
		}
		seen[ns.Name] = true
		if len(ns.Capabilities) == 0 {
			add(at+".capabilities", "is required (%s)", strings.Join(capabilities, ", "))
		}
		for k, c := range ns.Capabilities {
			if !slices.Contains(capabilities, c) {
				add(fmt.Sprintf("%s.capabilities[%d]", at, k), "must be one of %s, got %q", strings.Join(capabilities, ", "), c)
			}
		}
		for k, q := range ns.Queues {
			label(fmt.Sprintf("%s.queues[%d]", at, k), q)
		}
		if ns.MaxPriority < 0 || ns.MaxPriority > spec.MaxPriority {
			add(at+".maxPriority", "must be between 0 and %d, got %d", spec.MaxPriority, ns.MaxPriority)
		}
		for name, v := range map[string]int{"jobs": ns.Limits.Jobs, "pendingJobs": ns.Limits.PendingJobs, "gpus": ns.Limits.GPUs} {
			if v < 0 {
				add(at+".limits."+name, "must be >= 0 (0 is no limit), got %d", v)
			}
		}
		for dir, prefixes := range map[string][]string{"read": ns.Storage.Read, "write": ns.Storage.Write} {
			for k, pre := range prefixes {
				if _, err := storageKey(pre); err != nil {
					add(fmt.Sprintf("%s.storage.%s[%d]", at, dir, k), "%v", err)
				}
			}
		}
		for dir, models := range map[string][]string{"read": ns.Models.Read, "write": ns.Models.Write} {
			for k, m := range models {
				if m == "" || strings.ContainsAny(m, " \t\n\\") || hasDotSegment(m) {
					add(fmt.Sprintf("%s.models.%s[%d]", at, dir, k), "must be a model name without spaces or '.'/'..' segments, got %q", m)
				}
			}
		}
	}
	if len(es) > 0 {
		sort.SliceStable(es, func(i, k int) bool { return es[i].Path < es[k].Path })
		return es
	}
	return nil
}

// storageKey is the form storage locations are compared in: SCHEME://REST,
// a plain absolute path being file://PATH (as the builtin runtime reads
// it). A location with a '.' or '..' segment, raw or percent-encoded, is
// refused, not cleaned: cleaning would let "/data/nlp/../vision" pass as
// "/data/vision" in one reader and as something else in another.
func storageKey(loc string) (string, error) {
	scheme, rest, ok := strings.Cut(loc, "://")
	if !ok {
		if !strings.HasPrefix(loc, "/") {
			return "", fmt.Errorf("must be an absolute path or a URI (file:///dir, s3://bucket/prefix), got %q", loc)
		}
		scheme, rest = "file", loc
	}
	scheme = strings.ToLower(scheme)
	switch {
	case !schemeRE.MatchString(scheme):
		return "", fmt.Errorf("has an invalid URI scheme %q", scheme)
	case scheme == "file" && !strings.HasPrefix(rest, "/"):
		return "", fmt.Errorf("a file location must be an absolute path (file:///dir), got %q", loc)
	case strings.ContainsAny(rest, "\\?#") || strings.ContainsFunc(rest, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fmt.Errorf("must not contain '\\', '?', '#' or control characters, got %q", loc)
	}
	dec, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("has an invalid %%-escape: %q", loc)
	}
	if hasDotSegment(rest) || hasDotSegment(dec) {
		return "", fmt.Errorf("must not contain '.' or '..' segments (traversal is refused, not cleaned), got %q", loc)
	}
	if strings.Contains(strings.TrimPrefix(rest, "/"), "//") {
		return "", fmt.Errorf("must not contain empty segments ('//'), got %q", loc)
	}
	return scheme + "://" + rest, nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// underPrefix reports whether the location key lies at or under a prefix
// key, on a segment boundary ("/data/nlp" does not cover "/data/nlp2").
func underPrefix(key, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return key == prefix || strings.HasPrefix(key, prefix+"/")
}
