package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxSpecBytes bounds the size of a spec the decoder accepts.
const MaxSpecBytes = 1 << 20

// Decode parses a job spec written in YAML or JSON (JSON is YAML). Unknown
// fields, duplicate keys and values of the wrong type are errors that name
// the field path. Decode does not apply defaults or validate; Parse does.
func Decode(data []byte) (*Job, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("spec is %d bytes, more than the limit of %d", len(data), MaxSpecBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("spec is empty")
	}
	var js []byte
	if trimmed := bytes.TrimSpace(data); trimmed[0] == '{' && json.Valid(trimmed) {
		// JSON (what the API gets): skip the YAML parser, which costs
		// several times the rest of decoding, but keep its strictness
		// about repeated keys.
		if err := checkDuplicateKeys(trimmed); err != nil {
			return nil, fmt.Errorf("malformed spec: %w", err)
		}
		js = trimmed
	} else {
		var err error
		js, err = yaml.YAMLToJSONStrict(data)
		if err != nil {
			return nil, fmt.Errorf("malformed spec: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return nil, fmt.Errorf("malformed spec: %w", err)
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, fmt.Errorf("spec must be a mapping of fields, got %s", jsonKind(bytes.TrimSpace(js)))
	}
	var unknown Errors
	checkFields(generic, reflect.TypeFor[Job](), "", &unknown)
	if len(unknown) > 0 {
		return nil, unknown
	}
	var job Job
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, Errors{{Path: te.Field, Msg: fmt.Sprintf("must be %s, got %s", typeName(te.Type), te.Value)}}
		}
		return nil, fmt.Errorf("malformed spec: %w", err)
	}
	return &job, nil
}

// Parse decodes, defaults and validates a spec.
func Parse(data []byte) (*Job, error) {
	job, err := Decode(data)
	if err != nil {
		return nil, err
	}
	job.Default()
	if err := job.Validate(); err != nil {
		return nil, err
	}
	return job, nil
}

// checkDuplicateKeys reports a key repeated within one JSON object (which
// encoding/json would silently resolve to the last one).
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q is repeated in %s", k, orTop(path))
				}
				seen[k] = true
				if err := walk(join(path, k)); err != nil {
					return err
				}
			}
			_, err = dec.Token() // the closing brace
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk("")
}

func orTop(path string) string {
	if path == "" {
		return "the spec"
	}
	return path
}

// checkFields walks a decoded JSON value against the Go type it will be
// decoded into and records every key that names no field, with its path.
func checkFields(v any, t reflect.Type, path string, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return // a type error; the decoder reports it with its path
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				msg := "unknown field"
				if s := suggest(k, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, FieldError{Path: join(path, k), Msg: msg})
				continue
			}
			checkFields(m[k], f.Type, join(path, k), errs)
		}
	case reflect.Slice:
		if a, ok := v.([]any); ok {
			for i, e := range a {
				checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				checkFields(m[k], t.Elem(), join(path, k), errs)
			}
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		// Scalars are checked here rather than left to encoding/json so
		// that an element of a list or map is named by its own path
		// (task.exec.command[3], task.exec.env.OMP_NUM_THREADS).
		if v == nil || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
			return
		}
		if msg := scalarMismatch(v, t); msg != "" {
			*errs = append(*errs, FieldError{Path: path, Msg: msg})
		}
	}
}

// scalarMismatch says why a decoded JSON value does not fit a scalar type.
func scalarMismatch(v any, t reflect.Type) string {
	got := "a mapping"
	switch x := v.(type) {
	case string:
		got = fmt.Sprintf("string %q", x)
	case bool:
		got = fmt.Sprintf("bool %v", x)
	case float64:
		got = fmt.Sprintf("number %v", x)
	case []any:
		got = "a list"
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); ok {
			return ""
		}
		switch v.(type) {
		case float64, bool:
			return fmt.Sprintf("must be a string, got %s (quote it: \"%v\")", got, v)
		}
		return "must be a string, got " + got
	case reflect.Bool:
		if _, ok := v.(bool); ok {
			return ""
		}
		return "must be true or false, got " + got
	case reflect.Float64:
		if _, ok := v.(float64); ok {
			return ""
		}
		return "must be a number, got " + got
	default: // integers
		f, ok := v.(float64)
		if ok && f == float64(int64(f)) {
			return ""
		}
		return "must be an integer, got " + got
	}
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
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
		d := editDistance(lk, ln)
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

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
