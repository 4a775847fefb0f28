package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// referenceParse and referenceDecode are Parse and Decode as they were
// before parseTree: the JSON read by json.Valid, the duplicate-key scan and
// json.Unmarshal, and every path present computed on every spec. The fast
// path must give the same job and the same error, word for word.
func referenceDecode(data []byte) (*Job, error) {
	job, problems, _, err := referenceDecodeAll(data)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return job, nil
}

func referenceParse(data []byte) (*Job, error) {
	job, problems, present, err := referenceDecodeAll(data)
	if err != nil {
		return nil, err
	}
	zero := present["replicas"] && job.Replicas == 0
	job.Default()
	if zero {
		job.Replicas = 0
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

func referenceDecodeAll(data []byte) (*Job, Errors, map[string]bool, error) {
	if len(data) > MaxSpecBytes {
		return nil, nil, nil, fmt.Errorf("spec is %d bytes, more than the limit of %d", len(data), MaxSpecBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil, errors.New("spec is empty")
	}
	var js []byte
	if trimmed := bytes.TrimSpace(data); trimmed[0] == '{' && json.Valid(trimmed) {
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
	referenceCheckFields(generic, reflect.TypeFor[Job](), "", &problems)
	if len(problems) > 0 {
		var err error
		if js, err = json.Marshal(generic); err != nil {
			return nil, nil, nil, fmt.Errorf("malformed spec: %w", err)
		}
	}
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

// fastDecodeCorpus is JSON the fast path takes and JSON it hands to the
// general path: escapes, other scripts, invalid UTF-8, repeated keys
// (also once unescaped), numbers a float64 does not hold, syntax errors
// of every kind, unknown fields, typos, values of the wrong type, and
// specs that validation refuses.
var fastDecodeCorpus = []string{
	validJSON,
	`{"name":"bench","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`,
	` {"name":"a","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"]}}} ` + "\n",
	`{"name":"a","kind":"batch","replicas":0,"resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","kind":"batch","Replicas":0,"resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","kind":"batch","replicas":"0","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":1,"cpu":"500m","memory":"20Gi"},"task":{"driver":"exec","exec":{"command":["x","\u00e9\n\t\"q\"","\ud83d\ude00","\udc00"],"env":{"A":"1","B\u0041":"2"}}}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"],"env":{"A":"1","\u0041":"2"}}}}`,
	`{"name":"a","name":"b"}`,
	`{"name":"a","task":{"exec":{"command":["x"],"env":{"A":"1","A":"2"}}}}`,
	`{"name":"a","resources":{"gpus":1e400}}`,
	`{"name":"a","resources":{"gpus":1e400},"name":"b"}`,
	`{"name":"a","resources":{"gpus":1e2},"kind":"batch","task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","resources":{"gpus":1.5},"kind":"batch","task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","resources":{"gpus":-0},"kind":"batch","task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","resources":{"gpus":9007199254740993},"kind":"batch","task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","resources":{"gpus":01}}`, `{"name":"a","resources":{"gpus":1.}}`, `{"name":"a","resources":{"gpus":.5}}`,
	`{"name":"a","resources":{"gpus":+1}}`, `{"name":"a","resources":{"gpus":1e}}`, `{"name":"a","resources":{"gpus":-}}`,
	`{"name":"a",}`, `{"name":"a"`, `{"name":"a"}}`, `{"name":"a"} x`, `{"name" "a"}`, `{name:"a"}`, `{'name':'a'}`,
	`{"name":"a\x01"}`, "{\"name\":\"a\x01\"}", `{"name":"a\q"}`, `{"name":"\u12"}`, `{"name":"\u12G4"}`,
	`{"name":tru}`, `{"name":true}`, `{"name":null}`, `{"name":nul}`, `{"name":[1,]}`, `{"name":[1 2]}`, `{"name":[]}`,
	`{"name":{}}`, `{"name":"\xff\xfe"}`, "{\"name\":\"caf\xc3\xa9\"}", `{"name":"a","kind":"batch","task":{"driver":"exec","exec":{"command":[]}}}`,
	`{"Name":"a","kinds":"batch","resources":{"GPUs":4},"task":{"driver":"exec","exec":{"command":["x"]}}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":"four"},"task":{"driver":"exec","exec":{"command":["x",3,true,null]}}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":"x","env":{"A":1}}}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":1,"cpu":"lots"},"task":{"driver":"exec","exec":{"command":["x"]}},"restart":{"backoff":"soon"}}`,
	`{"name":"A_B","kind":"nope","resources":{"gpus":-1},"task":{"driver":"exec"}}`,
	`{"name":"a","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["x"]}},"labels":{"a":"b"},"priority":5}`,
	`{"a":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, 150) + `1` + strings.Repeat(`}`, 150) + `}`,
	"{\"name\":\"a\",\r\n\t\"kind\" : \"batch\" }",
	`{}`, `{"":1}`, `{"name":"a","":{"":[]}}`,
	"{\"name\":\"a\u2028b\"}",
	"{\"name\": \"a\"}\u00a0", // trimmed by bytes.TrimSpace
	"name: a\nkind: batch\n", "{name: a}", "{\"name\": a}",
}

func decodeResult(job *Job, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	js, merr := json.Marshal(job)
	if merr != nil {
		return "marshal error: " + merr.Error()
	}
	return string(js)
}

func checkFastDecode(t *testing.T, in []byte) {
	t.Helper()
	if got, want := decodeResult(Parse(in)), decodeResult(referenceParse(in)); got != want {
		t.Errorf("Parse(%q):\n got %s\nwant %s", in, got, want)
	}
	gotJob, gotErr := Decode(in)
	wantJob, wantErr := referenceDecode(in)
	if got, want := decodeResult(gotJob, gotErr), decodeResult(wantJob, wantErr); got != want {
		t.Errorf("Decode(%q):\n got %s\nwant %s", in, got, want)
	}
	if gotErr == nil && !reflect.DeepEqual(gotJob, wantJob) {
		t.Errorf("Decode(%q): %+v, want %+v", in, gotJob, wantJob)
	}
}

// TestFastDecodeMatchesReference: the one-pass JSON reading gives what the
// three passes gave, jobs and errors alike, on good and bad specs.
func TestFastDecodeMatchesReference(t *testing.T) {
	corpus := append([]string{validYAML}, fastDecodeCorpus...)
	for _, tt := range badSpecs {
		corpus = append(corpus, tt.in)
	}
	corpus = append(corpus, dupKeyDocs()...)
	for _, in := range corpus {
		checkFastDecode(t, []byte(in))
	}
}

// TestParseTreeIsUnmarshal: what parseTree takes, it reads as
// json.Unmarshal does; what it refuses is invalid JSON, has a repeated
// key, a number out of range or nesting past maxTreeDepth (the general
// path's business).
func TestParseTreeIsUnmarshal(t *testing.T) {
	for _, in := range append(fastDecodeCorpus, dupKeyDocs()...) {
		checkParseTree(t, bytes.TrimSpace([]byte(in)))
	}
}

func checkParseTree(t *testing.T, in []byte) {
	t.Helper()
	got, ok := parseTree(in)
	var want any
	werr := json.Unmarshal(in, &want)
	if ok {
		if werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseTree(%q) = %#v, json.Unmarshal = %#v, %v", in, got, want, werr)
		}
		return
	}
	if werr == nil && duplicateKeys(in) == nil && nesting(in) <= maxTreeDepth {
		t.Errorf("parseTree(%q) refused a document json.Unmarshal reads, with no key repeated", in)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, in := range fastDecodeCorpus {
		f.Add([]byte(in))
	}
	for _, tt := range badSpecs {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkParseTree(t, bytes.TrimSpace(in))
		checkFastDecode(t, in)
	})
}

// nesting is how deep the lists and mappings of a valid document go.
func nesting(in []byte) int {
	dec := json.NewDecoder(bytes.NewReader(in))
	depth, most := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			most = max(most, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// referenceCheckFields is checkFields as it was before it cached what it
// learns of each type and built paths only for errors. It walks a decoded JSON value against the Go type it will be
// decoded into and records every key that names no field and every value of
// the wrong type, with its path. It removes each offending value from v (an
// element of a list becomes null) so that the rest still decodes, and
// returns true when v itself must be removed by its parent.
func referenceCheckFields(v any, t reflect.Type, path string, errs *Errors) (drop bool) {
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
			if referenceCheckFields(m[name], fields[name].Type, join(path, name), errs) {
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
			if referenceCheckFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs) {
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
			if referenceCheckFields(m[k], t.Elem(), join(path, k), errs) {
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
