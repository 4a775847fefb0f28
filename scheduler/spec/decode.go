package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
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
	zero := present["replicas"] && job.Replicas == 0
	job.Default()
	if zero {
		job.Replicas = 0 // written as 0: Default fills in only what is left out
	}
	if verr := job.Validate(); verr != nil {
		var ves Errors
		if !errors.As(verr, &ves) {
			return nil, verr
		}
		problems = append(problems, withoutCovered(ves, problems, present)...)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return job, nil
}

// decode parses data into a Job. Syntax errors (malformed YAML or JSON, a
// repeated key, a document that is not a mapping) are returned as err: there
// is nothing sensible to validate after them. Field problems (unknown keys,
// values of the wrong type) are returned as problems, and the job is decoded
// from the rest of the document, so validation can still look at it.
func decode(data []byte) (*Job, Errors, map[string]bool, error) {
	if len(data) > MaxSpecBytes {
		return nil, nil, nil, fmt.Errorf("spec is %d bytes, more than the limit of %d", len(data), MaxSpecBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil, errors.New("spec is empty")
	}
	var js []byte
	if trimmed := bytes.TrimSpace(data); trimmed[0] == '{' && json.Valid(trimmed) {
		// JSON (what the API gets): skip the YAML parser, which costs
		// several times the rest of decoding, but keep its strictness
		// about repeated keys.
		if err := duplicateKeys(trimmed); err != nil {
			return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
		}
		js = trimmed
	} else {
		var err error
		js, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("malformed spec: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, nil, nil, fmt.Errorf("spec must be a mapping of fields, got %s", jsonKind(bytes.TrimSpace(js)))
	}
	present := map[string]bool{}
	paths(generic, "", present)
	var problems Errors
	checkFields(generic, reflect.TypeFor[Job](), "", &problems)
	if len(problems) > 0 {
		// checkFields removed every offending value; decode what is left.
		var err error
		if js, err = json.Marshal(generic); err != nil {
			return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
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
			return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
		}
		problems = append(problems, FieldError{Path: te.Field, Msg: fmt.Sprintf("must be %s, got %s", typeName(te.Type), te.Value)})
		if !removePath(generic, te.Field) {
			return nil, problems, present, nil
		}
		if js, err = json.Marshal(generic); err != nil {
			return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
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
// element of a list becomes null) so that the rest still decodes, and
// returns true when v itself must be removed by its parent.
func checkFields(v any, t reflect.Type, path string, errs *Errors) (drop bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return false // null decodes to the zero value of any type
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
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
		*errs = append(*errs, FieldError{Path: path, Msg: msg})
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, FieldError{Path: path, Msg: "must be a mapping, got " + describe(v)})
			return true
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			name := k
			if _, ok := fields[k]; !ok {
				msg := "unknown field"
				s := suggest(k, fields)
				if s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, FieldError{Path: join(path, k), Msg: msg})
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
			if checkFields(m[name], fields[name].Type, join(path, name), errs) {
				delete(m, name)
			}
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			*errs = append(*errs, FieldError{Path: path, Msg: "must be a list, got " + describe(v)})
			return true
		}
		for i, e := range a {
			if checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs) {
				a[i] = nil
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			*errs = append(*errs, FieldError{Path: path, Msg: "must be a mapping, got " + describe(v)})
			return true
		}
		for _, k := range sortedKeys(m) {
			if checkFields(m[k], t.Elem(), join(path, k), errs) {
				delete(m, k)
			}
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		// Scalars are checked here rather than left to encoding/json so
		// that an element of a list or map is named by its own path
		// (task.exec.command[3], task.exec.env.OMP_NUM_THREADS).
		if msg := scalarMismatch(v, t); msg != "" {
			*errs = append(*errs, FieldError{Path: path, Msg: msg})
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
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
