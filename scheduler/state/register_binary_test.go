package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
)

// The golden entries in testdata/entries: register_job.json.entry and
// register_jobs.json.entry are a RegisterJob and a RegisterJobs entry as
// the leader wrote them before RegisterJobsBinary (2b050fa: Encode, then
// EncodeRegisterJobs); register_jobs.binary-v1.entry holds the same
// requests as the second in format version 1; register_jobs.state.json
// is the jobs the two JSON entries leave, at indexes 1 and 2.
func readEntry(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/entries/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binaryOf re-encodes the requests of a JSON RegisterJob or RegisterJobs
// entry as the leader now writes them.
func binaryOf(t *testing.T, entry []byte) []byte {
	t.Helper()
	var reqs []RegisterJobRequest
	switch MessageType(entry[0]) {
	case RegisterJobType:
		var r RegisterJobRequest
		if err := json.Unmarshal(entry[1:], &r); err != nil {
			t.Fatal(err)
		}
		reqs = []RegisterJobRequest{r}
	case RegisterJobsType:
		var r RegisterJobsRequest
		if err := json.Unmarshal(entry[1:], &r); err != nil {
			t.Fatal(err)
		}
		reqs = r.Requests
	default:
		t.Fatalf("entry of type %s", MessageType(entry[0]))
	}
	var items [][]byte
	for i := range reqs {
		it, err := EncodeRegisterJobItem(&reqs[i])
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	b, err := EncodeRegisterJobsBinary(items)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answers renders a registration's response (either kind) as one line per
// request.
func answers(resp any) string {
	var b strings.Builder
	switch r := resp.(type) {
	case *RegisterJobResponse:
		fmt.Fprintf(&b, "%s existing=%v\n", r.ID, r.Existing)
	case *RegisterJobsResponse:
		for _, res := range r.Results {
			if res.Err != nil {
				fmt.Fprintf(&b, "error: %v\n", res.Err)
				continue
			}
			fmt.Fprintf(&b, "%s existing=%v\n", res.Response.ID, res.Response.Existing)
		}
	default:
		fmt.Fprintf(&b, "%T %v\n", resp, resp)
	}
	return b.String()
}

func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSnapshot(&b, f.Store().Snapshot()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRegisterJobsBinaryReplaysAsJSON: the JSON entries an older leader
// wrote still apply as they did (the jobs they leave are pinned in
// register_jobs.state.json), and the same requests in the binary form,
// re-encoded now or as pinned in the golden version-1 entry, leave the
// same state (the whole snapshot, byte for byte) and the same answers.
func TestRegisterJobsBinaryReplaysAsJSON(t *testing.T) {
	lone, batch := readEntry(t, "register_job.json.entry"), readEntry(t, "register_jobs.json.entry")
	replay := func(entries ...[]byte) (*FSM, string) {
		f := NewFSM(zap.NewNop())
		var out strings.Builder
		for i, e := range entries {
			resp := f.ApplyEntry(uint64(i+1), e)
			if err := f.Fatal(); err != nil {
				t.Fatal(err)
			}
			out.WriteString(answers(resp))
		}
		return f, out.String()
	}
	old, oldAnswers := replay(lone, batch)
	wantAnswers := "lone-000001 existing=false\n" +
		"train-a1b2c3 existing=false\n" +
		"eval-d4e5f6 existing=false\n" +
		"train-a1b2c3 existing=true\n" +
		"error: job eval-d4e5f6 already exists: conflict\n"
	if oldAnswers != wantAnswers {
		t.Errorf("JSON entries answered\n%s\nwant\n%s", oldAnswers, wantAnswers)
	}
	got, err := json.MarshalIndent(old.Store().Snapshot().Jobs(nil), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := readEntry(t, "register_jobs.state.json"); !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("the JSON entries left\n%s\nwant (testdata/entries/register_jobs.state.json)\n%s", got, want)
	}
	oldSnap := snapshotBytes(t, old)
	for _, tc := range []struct {
		name    string
		entries [][]byte
	}{
		{"re-encoded", [][]byte{binaryOf(t, lone), binaryOf(t, batch)}},
		{"golden v1", [][]byte{binaryOf(t, lone), readEntry(t, "register_jobs.binary-v1.entry")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ans := replay(tc.entries...)
			if ans != oldAnswers {
				t.Errorf("binary entries answered\n%s\nwant\n%s", ans, oldAnswers)
			}
			if !bytes.Equal(snapshotBytes(t, f), oldSnap) {
				t.Errorf("binary entries left another state than the JSON ones")
			}
			if !reflect.DeepEqual(f.Store().Snapshot().Jobs(nil), old.Store().Snapshot().Jobs(nil)) {
				t.Errorf("binary entries left other jobs than the JSON ones")
			}
		})
	}
}

// fillAll sets every settable field under v to a value that is not its
// zero, so that a round trip shows every field of the type as it is
// today and as fields are added.
func fillAll(t *testing.T, v reflect.Value, depth int) {
	t.Helper()
	if depth > 8 {
		return
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 12, 6, 11, 4, 5, 123456789, time.UTC).Add(time.Duration(depth) * time.Hour)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(7 + depth))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(9 + depth))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.25 + float64(depth))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(t, v.Elem(), depth+1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillAll(t, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillAll(t, k, depth+1)
		fillAll(t, e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fillAll(t, f, depth+1)
			}
		}
	default:
		t.Fatalf("fillAll: no value for a %s (%s): teach it, and check that the binary form keeps it", v.Kind(), v.Type())
	}
}

// TestRegisterBinaryRoundTrip: a job with every field set decodes from the
// binary form as it decodes from JSON; so does a submit token that is not
// UTF-8 (JSON wrote U+FFFD for each bad byte).
func TestRegisterBinaryRoundTrip(t *testing.T) {
	full := &api.Job{}
	fillAll(t, reflect.ValueOf(full).Elem(), 0)
	bad := testJob("bad-token", 1, 1)
	bad.SubmitToken = "default/\xff\xfeok\xc3"
	for _, tc := range []struct {
		name string
		job  *api.Job
	}{{"every field set", full}, {"token not UTF-8", bad}, {"no job", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			req := RegisterJobRequest{Job: tc.job}
			js, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var viaJSON RegisterJobRequest
			if err := json.Unmarshal(js, &viaJSON); err != nil {
				t.Fatal(err)
			}
			item, err := EncodeRegisterJobItem(&req)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := EncodeRegisterJobsBinary([][]byte{item, item})
			if err != nil {
				t.Fatal(err)
			}
			var bad error
			got, ok := decodeRegisterJobsBinary(entry[1:], &bad)
			if !ok {
				t.Fatal(bad)
			}
			if len(got.Requests) != 2 {
				t.Fatalf("%d requests, want 2", len(got.Requests))
			}
			for i, r := range got.Requests {
				if !reflect.DeepEqual(r, viaJSON) {
					gj, _ := json.Marshal(r)
					t.Errorf("request %d: binary gave\n%s\nJSON gave\n%s", i, gj, js)
				}
			}
			if tc.job != nil && len(entry) >= len(js)*2+1 {
				t.Errorf("binary entry %d bytes for two requests of %d bytes in JSON", len(entry), len(js))
			}
		})
	}
	if got := jsonUTF8("a\xffb\xe2\x82"); got != "a\uFFFDb\uFFFD\uFFFD" {
		t.Errorf("jsonUTF8 = %q", got)
	}
}

// TestEncodeRegisterJobItem: what a spec may hold encodes and decodes (an
// env of 100,000 variables: more than the decoder's default limit), and
// what would not decode is the request's error, as it was in JSON.
func TestEncodeRegisterJobItem(t *testing.T) {
	big := testJob("big-env", 1, 1)
	big.Spec.Task.Exec.Env = map[string]string{}
	for i := range 100_000 {
		big.Spec.Task.Exec.Env[fmt.Sprintf("V%d", i)] = "x"
	}
	late := testJob("late", 1, 1)
	late.SubmitTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		job  *api.Job
		err  string
	}{
		{"a large env", big, ""},
		{"a time past 9999", late, "would not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			item, err := EncodeRegisterJobItem(&RegisterJobRequest{Job: tc.job})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if _, jerr := Encode(RegisterJobType, RegisterJobRequest{Job: tc.job}); jerr == nil {
					t.Errorf("JSON encodes it: the binary form refuses what JSON took")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			entry, err := EncodeRegisterJobsBinary([][]byte{item})
			if err != nil {
				t.Fatal(err)
			}
			f := NewFSM(zap.NewNop())
			if resp, ok := f.ApplyEntry(1, entry).(*RegisterJobsResponse); !ok || resp.Results[0].Err != nil {
				t.Fatalf("response %#v (%v)", resp, f.Fatal())
			}
			if got := f.Store().Snapshot().Job(nil, tc.job.ID); got == nil || len(got.Spec.Task.Exec.Env) != len(tc.job.Spec.Task.Exec.Env) {
				t.Errorf("stored %v", got)
			}
		})
	}
}

// TestRegisterJobsBinaryUndecodable: a body the decoder cannot read halts
// the FSM with an error naming the entry, and applies nothing.
func TestRegisterJobsBinaryUndecodable(t *testing.T) {
	good := readEntry(t, "register_jobs.binary-v1.entry")
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "empty body"},
		{"a later version", append([]byte{2}, good[2:]...), "unknown format version 2"},
		{"truncated", good[1 : len(good)-5], "unexpected EOF"},
		{"trailing bytes", append(append([]byte{}, good[1:]...), 0x01), "extraneous data"},
		{"no requests", []byte{registerBinaryV1, 0x80}, "no requests"},
		{"null", []byte{registerBinaryV1, 0xf6}, "no requests"},
		{"not an array", []byte{registerBinaryV1, 0x01}, "cannot unmarshal"},
		{"a request that is not a map", []byte{registerBinaryV1, 0x81, 0x01}, "cannot unmarshal"},
		{"JSON", append([]byte{registerBinaryV1}, `[{"job":{"id":"a"}}]`...), "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM(zap.NewNop())
			resp := f.ApplyEntry(7, append([]byte{byte(RegisterJobsBinaryType)}, tc.body...))
			var ue *UndecodableEntryError
			if !errors.As(resp.(error), &ue) || ue.Index != 7 || ue.Type != RegisterJobsBinaryType || !strings.Contains(ue.Error(), tc.want) {
				t.Fatalf("response %v, want an undecodable RegisterJobsBinary entry at 7 (%q)", resp, tc.want)
			}
			if n := len(f.Store().Snapshot().Jobs(nil)); n != 0 {
				t.Errorf("%d jobs stored", n)
			}
		})
	}
}

// FuzzRegisterJobsBinary: whatever the log holds under the type, applying
// it neither panics nor half-applies: it registers every request it
// answers for, or halts with an UndecodableEntryError and stores nothing.
func FuzzRegisterJobsBinary(f *testing.F) {
	good, err := os.ReadFile("testdata/entries/register_jobs.binary-v1.entry")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[1:])
	f.Add([]byte{registerBinaryV1, 0x80})
	f.Add([]byte{registerBinaryV1, 0x81, 0xa1, 0x63, 'j', 'o', 'b', 0xa1, 0x62, 'i', 'd', 0x61, 'x'})
	f.Fuzz(func(t *testing.T, body []byte) {
		fsm := NewFSM(zap.NewNop())
		resp := fsm.ApplyEntry(1, append([]byte{byte(RegisterJobsBinaryType)}, body...))
		jobs := fsm.Store().Snapshot().Jobs(nil)
		switch r := resp.(type) {
		case *RegisterJobsResponse:
			var bad error
			req, ok := decodeRegisterJobsBinary(body, &bad)
			if !ok || len(r.Results) != len(req.Requests) {
				t.Fatalf("answered %d requests of an entry that decodes as %v (%v)", len(r.Results), req, bad)
			}
			for _, res := range r.Results {
				if res.Err == nil && fsm.Store().Snapshot().Job(nil, res.Response.ID) == nil {
					t.Fatalf("answered job %s, not stored", res.Response.ID)
				}
			}
		case error:
			var ue *UndecodableEntryError
			if errors.As(r, &ue) && len(jobs) != 0 {
				t.Fatalf("undecodable entry stored %d jobs", len(jobs))
			}
		default:
			t.Fatalf("response %T", resp)
		}
	})
}
