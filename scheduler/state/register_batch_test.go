package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// batchEntry builds a RegisterJobs entry the way the leader does: each job
// encoded as its own RegisterJob entry, then joined.
func batchEntry(t *testing.T, jobs ...*api.Job) []byte {
	t.Helper()
	var singles [][]byte
	for _, j := range jobs {
		e, err := Encode(RegisterJobType, RegisterJobRequest{Job: j})
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, e)
	}
	data, err := EncodeRegisterJobs(singles)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func withToken(j *api.Job, tok string) *api.Job { j.SubmitToken = tok; return j }

// TestRegisterJobs: each request of a batch is answered as its own
// RegisterJob entry would be, in order, and a rejected request leaves the
// others applied.
func TestRegisterJobs(t *testing.T) {
	type want struct {
		id       string
		existing bool
		err      error // errors.Is target; nil for success
	}
	for _, tc := range []struct {
		name  string
		jobs  []*api.Job
		want  []want
		count int // jobs stored after the batch (one, "old", before it)
	}{
		{"new jobs", []*api.Job{testJob("a", 1, 1), testJob("b", 1, 1)},
			[]want{{id: "a"}, {id: "b"}}, 3},
		{"an ID an earlier entry took", []*api.Job{testJob("old", 1, 1), testJob("b", 1, 1)},
			[]want{{err: ErrConflict}, {id: "b"}}, 2},
		{"an ID the same batch took", []*api.Job{testJob("a", 1, 1), testJob("a", 1, 1)},
			[]want{{id: "a"}, {err: ErrConflict}}, 2},
		{"a token the same batch used", []*api.Job{withToken(testJob("a", 1, 1), "t1"), withToken(testJob("b", 1, 1), "t1")},
			[]want{{id: "a"}, {id: "a", existing: true}}, 2},
		{"a token an earlier entry used", []*api.Job{withToken(testJob("a", 1, 1), "t0")},
			[]want{{id: "old", existing: true}}, 1},
		{"a request without a job", []*api.Job{nil, testJob("b", 1, 1)},
			[]want{{err: errAny}, {id: "b"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.ok(RegisterJobType, RegisterJobRequest{Job: withToken(testJob("old", 1, 1), "t0")})
			h.index++
			resp, ok := h.fsm.ApplyEntry(h.index, batchEntry(t, tc.jobs...)).(*RegisterJobsResponse)
			if !ok || len(resp.Results) != len(tc.want) {
				t.Fatalf("response %#v", resp)
			}
			for i, w := range tc.want {
				r := resp.Results[i]
				switch {
				case w.err != nil:
					if r.Err == nil || (w.err != errAny && !errors.Is(r.Err, w.err)) || r.Response != nil {
						t.Errorf("request %d: %+v, want error %v", i, r, w.err)
					}
				case r.Err != nil || r.Response == nil || r.Response.ID != w.id || r.Response.Existing != w.existing:
					t.Errorf("request %d: %+v (%v), want %+v", i, r.Response, r.Err, w)
				}
			}
			if n := len(h.snap().Jobs(nil)); n != tc.count {
				t.Fatalf("%d jobs stored, want %d", n, tc.count)
			}
			for _, j := range h.snap().Jobs(nil) {
				if j.ID != "old" && (j.CreateIndex != h.index || j.Status != api.JobPending || len(j.Events) != 1) {
					t.Errorf("job %s: created at %d (want %d), %s, %d events", j.ID, j.CreateIndex, h.index, j.Status, len(j.Events))
				}
			}
			wantIdx := uint64(1)
			if tc.count > 1 {
				wantIdx = h.index
			}
			if got := h.snap().Index(tableJobs); got != wantIdx {
				t.Errorf("jobs index %d, want %d", got, wantIdx)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestEncodeRegisterJobs: the joined entry decodes to the requests it was
// made of, as Encode of the same RegisterJobsRequest would; anything but
// RegisterJob entries is refused.
func TestEncodeRegisterJobs(t *testing.T) {
	jobs := []*api.Job{testJob("a", 1, 1), withToken(testJob("b", 2, 8), "tok")}
	joined := batchEntry(t, jobs...)
	plain, err := Encode(RegisterJobsType, RegisterJobsRequest{Requests: []RegisterJobRequest{{Job: jobs[0]}, {Job: jobs[1]}}})
	if err != nil {
		t.Fatal(err)
	}
	if joined[0] != byte(RegisterJobsType) {
		t.Fatalf("type byte %d", joined[0])
	}
	var a, b RegisterJobsRequest
	if err := json.Unmarshal(joined[1:], &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(plain[1:], &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) || len(a.Requests) != 2 {
		t.Fatalf("joined decodes to %+v, Encode's to %+v", a, b)
	}
	cancel, _ := Encode(CancelJobType, CancelJobRequest{JobID: "a"})
	for name, in := range map[string][][]byte{"another type": {cancel}, "empty entry": {{}}, "type byte only": {{byte(RegisterJobType)}}} {
		if _, err := EncodeRegisterJobs(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMixedLogReplays: a log of RegisterJob and RegisterJobs entries (an
// old server's log, then a new leader's) replays to the same state on a
// fresh FSM, and a snapshot taken after it restores to that state.
func TestMixedLogReplays(t *testing.T) {
	single := func(j *api.Job) []byte {
		e, err := Encode(RegisterJobType, RegisterJobRequest{Job: j})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cancel, _ := Encode(CancelJobType, CancelJobRequest{JobID: "c", Reason: "by test"})
	log := [][]byte{
		single(testJob("a", 1, 1)),
		batchEntry(t, testJob("b", 1, 1), testJob("c", 2, 1), withToken(testJob("d", 1, 1), "tok")),
		single(withToken(testJob("d-retry", 1, 1), "tok")), // an old entry sees the batch's token
		cancel,
		batchEntry(t, testJob("a", 1, 1), testJob("e", 1, 4)), // "a" is taken: rejected alone
		single(testJob("f", 1, 1)),
	}
	replay := func() *harness {
		h := newHarness(t)
		for _, e := range log {
			h.index++
			if err, ok := h.fsm.ApplyEntry(h.index, e).(*UndecodableEntryError); ok {
				t.Fatalf("entry %d: %v", h.index, err)
			}
		}
		return h
	}
	h1, h2 := replay(), replay()
	jobs := h1.snap().Jobs(nil)
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID+"@"+j.Status)
	}
	if want := []string{"a@pending", "b@pending", "c@cancelled", "d@pending", "e@pending", "f@pending"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("jobs %v, want %v", ids, want)
	}
	if j := h1.job("e"); j.CreateIndex != 5 {
		t.Fatalf("e created at %d, want 5", j.CreateIndex)
	}
	if !reflect.DeepEqual(jobs, h2.snap().Jobs(nil)) {
		t.Fatal("two replays of the same log differ")
	}
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, h1.snap()); err != nil {
		t.Fatal(err)
	}
	h3 := newHarness(t)
	if err := h3.fsm.Restore(readCloser(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jobs, h3.snap().Jobs(nil)) || h3.snap().Index(tableJobs) != h1.snap().Index(tableJobs) {
		t.Fatal("the restored snapshot differs from the replayed state")
	}
}
