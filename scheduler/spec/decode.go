package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/internal/editdist"
)

// MaxSpecBytes bounds the size of a spec the decoder accepts.
const MaxSpecBytes = 1 << 20

// Decode parses a job spec written in YAML or JSON (JSON is YAML). Unknown
// fields, duplicate keys and values of the wrong type are errors that name
// the field path; every such problem is listed, not only the first. Decode
// does not apply defaults or validate; Parse does.
func Decode(data []byte) (*Job, error) {
	job, problems, _, err := decode(data)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return job, nil
}

// Parse decodes, defaults and validates a spec. It reports every problem in
// one pass: unknown fields and values of the wrong type together with what
// validation finds in the rest of the spec.
func Parse(data []byte) (*Job, error) {
	job, problems, present, err := decode(data)
	if err != nil {
		return nil, err
	}
	zero := present.replicas && job.Replicas == 0
	job.Default()
	if zero {
		job.Replicas = 0 // written as 0: Default fills in only what is left out
	}
	if verr := job.Validate(); verr != nil {
		var ves Errors
		if !errors.As(verr, &ves) {
			return nil, verr
		}
		if len(problems) > 0 {
			ves = withoutCovered(ves, problems, present.paths())
		}
		problems = append(problems, ves...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return job, nil
}

// presence says which paths the spec as written holds (before decode
// removed the values it could not take). Only Parse's check of a
// replicas written as 0 needs it on every spec; the rest, which only a
// spec with problems needs, is computed then, from the document again.
type presence struct {
	replicas bool   // the spec writes replicas
	js       []byte // the spec as JSON
}

func (p presence) paths() map[string]bool {
	var doc any
	out := map[string]bool{}
	if json.Unmarshal(p.js, &doc) == nil {
		paths(doc, "", out)
	}
	return out
}

// decode parses data into a Job. Syntax errors (malformed YAML or JSON, a
// repeated key, a document that is not a mapping) are returned as err: there
// is nothing sensible to validate after them. Field problems (unknown keys,
// values of the wrong type) are returned as problems, and the job is decoded
// from the rest of the document, so validation can still look at it.
func decode(data []byte) (*Job, Errors, presence, error) {
	if len(data) > MaxSpecBytes {
		return nil, nil, presence{}, fmt.Errorf("spec is %d bytes, more than the limit of %d", len(data), MaxSpecBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, presence{}, errors.New("spec is empty")
	}
	var js []byte
	var generic any
	if trimmed[0] == '{' {
		// JSON (what the API gets): skip the YAML parser, which costs
		// several times the rest of decoding. parseTree reads a plain
		// document in one pass; one it does not take (malformed, a key
		// repeated, a number out of range, nesting past maxTreeDepth) is
		// read as it was before: json.Valid, the duplicate-key scan, then
		// json.Unmarshal, which word the problem.
		// A refused document's partial tree is dropped: one followed by
		// more text (`{...}0`) goes to the YAML reader like any other.
		if tree, ok := parseTree(trimmed); ok {
			generic, js = tree, trimmed
		} else if json.Valid(trimmed) {
			if err := duplicateKeys(trimmed); err != nil {
				return nil, nil, presence{}, fmt.Errorf("malformed spec: %w", err)
			}
			js = trimmed
		}
	}
	if js == nil {
		var err error
		js, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			return nil, nil, presence{}, fmt.Errorf("malformed spec: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
	}
	if generic == nil {
		if err := json.Unmarshal(js, &generic); err != nil {
			return nil, nil, presence{}, fmt.Errorf("malformed spec: %w", err)
		}
	}
	top, ok := generic.(map[string]any)
	if !ok {
		return nil, nil, presence{}, fmt.Errorf("spec must be a mapping of fields, got %s", jsonKind(bytes.TrimSpace(js)))
	}
	_, replicas := top["replicas"]
	present := presence{replicas: replicas, js: js}
	var problems Errors
	checkFields(generic, reflect.TypeFor[Job](), &problems)
	if len(problems) > 0 {
		// checkFields removed every offending value; decode what is left.
		var err error
		if js, err = json.Marshal(generic); err != nil {
			return nil, nil, presence{}, fmt.Errorf("malformed spec: %w", err)
		}
	}
	// checkFields knows every type the spec uses; the loop is a backstop
	// for one it does not: each type error the decoder still finds is
	// recorded, its value removed, and the rest decoded again, so that it
	// does not hide the other problems of the spec.
	for range maxBackstop {
		var job Job
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		err := dec.Decode(&job)
		if err == nil {
			return &job, problems, present, nil
		}
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, nil, presence{}, fmt.Errorf("malformed spec: %w", err)
		}
		problems = append(problems, FieldError{Path: te.Field, Msg: fmt.Sprintf("must be %s, got %s", typeName(te.Type), te.Value)})
		if !removePath(generic, te.Field) {
			return nil, problems, present, nil
		}
		if js, err = json.Marshal(generic); err != nil {
			return nil, nil, presence{}, fmt.Errorf("malformed spec: %w", err)
		}
	}
	return nil, problems, present, nil
}

// maxBackstop bounds the decoder's retries after type errors checkFields
// did not catch (each removes one value).
const maxBackstop = 32

// removePath deletes the value at a dotted path of mapping keys (the
// decoder's UnmarshalTypeError.Field) from a decoded document, reporting
// whether it found one: a path through a list is not one it can follow.
func removePath(doc any, path string) bool {
	keys := strings.Split(path, ".")
	for i, k := range keys {
		m, ok := doc.(map[string]any)
		if !ok {
			return false
		}
		v, ok := m[k]
		if !ok {
			return false
		}
		if i == len(keys)-1 {
			delete(m, k)
			return true
		}
		doc = v
	}
	return false
}

// withoutCovered drops validation errors that a decoding problem explains.
// A value of the wrong type was removed before validation, which then sees
// it as missing: an error about that path (or one under it) would only
// repeat the problem, and so would one about a sibling the user did not
// write ("gpus: must be >= 1" when the gpuMilli beside it was "500m").
func withoutCovered(ves, problems Errors, present map[string]bool) Errors {
	var out Errors
	for _, ve := range ves {
		covered := false
		for _, p := range problems {
			if under(ve.Path, p.Path) || (!strings.HasPrefix(p.Msg, "unknown field") && !present[ve.Path] && parent(ve.Path) == parent(p.Path)) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, ve)
		}
	}
	return out
}

// under says whether path is p or lies inside it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// parent is the path of the mapping or list that holds path.
func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// paths records the path of every value in a decoded document.
func paths(v any, path string, out map[string]bool) {
	out[path] = true
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			paths(e, join(path, k), out)
		}
	case []any:
		for i, e := range x {
			paths(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func orTop(path string) string {
	if path == "" {
		return "the spec"
	}
	return path
}

// checkFields walks a decoded JSON value against the Go type it will be
// decoded into and records every key that names no field and every value of
// the wrong type, with its path. It removes each offending value from v (an
// element of a list becomes null) so that the rest still decodes. Every
// submission passes through it, so what it learns of a type is kept
// (typeInfo) and a path is spelled out only for an error.
func checkFields(v any, t reflect.Type, errs *Errors) {
	c := fieldChecker{errs: errs, path: make([]pathSegment, 0, 8)}
	c.check(v, t)
}

// fieldChecker is checkFields' walk: errs collects the problems, and path
// is where the walk is, spelled out (String) only for an error.
type fieldChecker struct {
	errs *Errors
	path []pathSegment
}

// pathSegment is a key of a mapping or, with index >= 0, an element of a
// list.
type pathSegment struct {
	key   string
	index int
}

func (c *fieldChecker) String() string {
	path := ""
	for _, s := range c.path {
		if s.index >= 0 {
			path += "[" + strconv.Itoa(s.index) + "]"
		} else {
			path = join(path, s.key)
		}
	}
	return path
}

// under checks v against t at path's segment s.
func (c *fieldChecker) under(s pathSegment, v any, t reflect.Type) (drop bool) {
	c.path = append(c.path, s)
	drop = c.check(v, t)
	c.path = c.path[:len(c.path)-1]
	return drop
}

// check checks v against t at c.path, and returns true when v itself must
// be removed by its parent.
func (c *fieldChecker) check(v any, t reflect.Type) (drop bool) {
	info := typeInfoOf(t)
	t = info.t
	if v == nil {
		return false // null decodes to the zero value of any type
	}
	if info.unmarshaler {
		// Quantity, Duration: ask the type itself, so that its error
		// carries this value's own path (an element of a list too).
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err == nil {
			return false
		}
		msg := err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("must be %s, got %s", typeName(t), te.Value)
		}
		*c.errs = append(*c.errs, FieldError{Path: c.String(), Msg: msg})
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			*c.errs = append(*c.errs, FieldError{Path: c.String(), Msg: "must be a mapping, got " + describe(v)})
			return true
		}
		fields := info.fields
		var buf [16]string
		for _, k := range appendSortedKeys(buf[:0], m) {
			name := k
			if _, ok := fields[k]; !ok {
				msg := "unknown field"
				s := suggest(k, fields)
				if s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*c.errs = append(*c.errs, FieldError{Path: join(c.String(), k), Msg: msg})
				val := m[k]
				delete(m, k)
				if _, taken := m[s]; s == "" || taken {
					continue
				}
				// Validate the rest as the user meant it: without this,
				// "GPUs: 4" would also report "gpus: must be >= 1", a
				// problem the typo made, not the user.
				name = s
				m[name] = val
			}
			if c.under(pathSegment{key: name, index: -1}, m[name], fields[name].Type) {
				delete(m, name)
			}
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			*c.errs = append(*c.errs, FieldError{Path: c.String(), Msg: "must be a list, got " + describe(v)})
			return true
		}
		for i, e := range a {
			if c.under(pathSegment{index: i}, e, info.elem) {
				a[i] = nil
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			*c.errs = append(*c.errs, FieldError{Path: c.String(), Msg: "must be a mapping, got " + describe(v)})
			return true
		}
		var buf [16]string
		for _, k := range appendSortedKeys(buf[:0], m) {
			if c.under(pathSegment{key: k, index: -1}, m[k], info.elem) {
				delete(m, k)
			}
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		// Scalars are checked here rather than left to encoding/json so
		// that an element of a list or map is named by its own path
		// (task.exec.command[3], task.exec.env.OMP_NUM_THREADS).
		if msg := scalarMismatch(v, t); msg != "" {
			*c.errs = append(*c.errs, FieldError{Path: c.String(), Msg: msg})
			return true
		}
	}
	return false
}

// typeInfo is what checkFields needs to know of a type, past pointers.
type typeInfo struct {
	t           reflect.Type
	unmarshaler bool                           // *t is a json.Unmarshaler
	fields      map[string]reflect.StructField // a struct's, by JSON key
	elem        reflect.Type                   // a slice's or map's
}

var typeInfoCache sync.Map // reflect.Type -> *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if info, ok := typeInfoCache.Load(t); ok {
		return info.(*typeInfo)
	}
	info := &typeInfo{t: t}
	for info.t.Kind() == reflect.Pointer {
		info.t = info.t.Elem()
	}
	info.unmarshaler = reflect.PointerTo(info.t).Implements(reflect.TypeFor[json.Unmarshaler]())
	switch info.t.Kind() {
	case reflect.Struct:
		info.fields = jsonFields(info.t)
	case reflect.Slice, reflect.Map:
		info.elem = info.t.Elem()
	}
	actual, _ := typeInfoCache.LoadOrStore(t, info)
	return actual.(*typeInfo)
}

// appendSortedKeys appends m's keys to keys, sorted.
func appendSortedKeys(keys []string, m map[string]any) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describe names the JSON kind of a decoded value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case float64:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return "null"
}

// scalarMismatch says why a decoded JSON value does not fit a scalar type
// (describing the value only when it does not: every scalar of every
// submission passes through here).
func scalarMismatch(v any, t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); ok {
			return ""
		}
		switch v.(type) {
		case float64, bool:
			return fmt.Sprintf("must be a string, got %s (quote it: \"%v\")", describe(v), v)
		}
		return "must be a string, got " + describe(v)
	case reflect.Bool:
		if _, ok := v.(bool); ok {
			return ""
		}
		return "must be true or false, got " + describe(v)
	case reflect.Float64:
		if _, ok := v.(float64); ok {
			return ""
		}
		return "must be a number, got " + describe(v)
	default: // integers
		f, ok := v.(float64)
		if ok && f == float64(int64(f)) {
			return ""
		}
		return "must be an integer, got " + describe(v)
	}
}

// jsonFieldsCache holds jsonFields' answer per struct type: every
// submission walks the same few types, and the reflection showed in the
// leader's profile. The maps are shared: callers only read them.
var jsonFieldsCache sync.Map // reflect.Type -> map[string]reflect.StructField

// jsonFields maps a struct's JSON keys to its fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := jsonFieldsCache.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m, _ := jsonFieldsCache.LoadOrStore(t, structJSONFields(t))
	return m.(map[string]reflect.StructField)
}

func structJSONFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// suggest returns the known field closest to k when it is a likely typo:
// same letters in another case, then the smallest edit distance (at most
// 2), preferring a field that k is a prefix of or that is a prefix of k.
func suggest(k string, fields map[string]reflect.StructField) string {
	lk := strings.ToLower(k)
	best, bestScore := "", 5
	for name := range fields {
		ln := strings.ToLower(name)
		if ln == lk {
			return name
		}
		d := editdist.Levenshtein(lk, ln)
		if d > 2 {
			continue
		}
		score := 2 * d
		if strings.HasPrefix(ln, lk) || strings.HasPrefix(lk, ln) {
			score--
		}
		if score < bestScore || (score == bestScore && name < best) {
			best, bestScore = name, score
		}
	}
	return best
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a value of another type"
	}
	switch t {
	case reflect.TypeFor[Quantity]():
		return `a quantity such as "20Gi", "500m" or 2`
	case reflect.TypeFor[Duration]():
		return `a duration such as "30s" or "2m"`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}
