package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// TestRegisterBatcherGroups: submissions that arrive while the in-flight
// entries commit go out together in the next entry, as one RegisterJobs
// command applied by the real state machine (RegisterJobsBinary, as are the
// lone entries before it: batches of one), and each is answered with
// its own job and that entry's index. The commit is gated so the test
// decides what is in flight.
func TestRegisterBatcherGroups(t *testing.T) {
	fsm := state.NewFSM(zaptest.NewLogger(t))
	var (
		mu      sync.Mutex
		index   uint64
		entries []state.MessageType
	)
	gate := make(chan struct{})
	b := &registerBatcher{apply: func(_ context.Context, data []byte) (any, uint64, error) {
		<-gate
		mu.Lock()
		defer mu.Unlock()
		index++
		entries = append(entries, state.MessageType(data[0]))
		resp := fsm.ApplyEntry(index, data)
		if err, ok := resp.(error); ok {
			return nil, index, err
		}
		return resp, index, nil
	}}
	type answer struct {
		id  string
		idx uint64
		err error
	}
	answers := make(chan answer, 100)
	submit := func(id, token string) {
		j := &api.Job{ID: id, Name: id, Namespace: "default", Queue: "default", SubmitToken: token}
		e, err := state.EncodeRegisterJobItem(&state.RegisterJobRequest{Job: j})
		if err != nil {
			t.Error(err)
			return
		}
		resp, idx, err := b.register(e)
		a := answer{idx: idx, err: err}
		if resp != nil {
			a.id = resp.ID
		}
		answers <- a
	}
	inFlight := func() int { b.mu.Lock(); defer b.mu.Unlock(); return b.inFlight }
	queued := func() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) }
	// Two lone entries take both slots...
	go submit("first", "")
	go submit("second", "")
	waitFor(t, 5*time.Second, "two entries in flight", func() bool { return inFlight() == 2 })
	// ...and these wait for the next entry; two share a token.
	for i := range 8 {
		go submit(fmt.Sprintf("job-%d", i), "")
	}
	go submit("tok-a", "shared")
	waitFor(t, 5*time.Second, "nine queued", func() bool { return queued() == 9 })
	go submit("tok-b", "shared")
	waitFor(t, 5*time.Second, "ten queued", func() bool { return queued() == 10 })
	// Let the entries commit one at a time, in the order they reached
	// the gate (a channel's waiting receivers are served first come,
	// first served): closing it let the batch, sent when the first lone
	// entry freed a slot, take the lock before the second lone entry
	// (CI once saw [RegisterJob RegisterJobs RegisterJob]).
	entryCount := func() int { mu.Lock(); defer mu.Unlock(); return len(entries) }
	for k := range 3 {
		gate <- struct{}{}
		waitFor(t, 5*time.Second, fmt.Sprintf("entry %d applied", k+1), func() bool { return entryCount() == k+1 })
	}
	got := map[string]answer{}
	for range 12 {
		a := <-answers
		if a.err != nil {
			t.Fatalf("answer %+v", a)
		}
		got[a.id] = a
	}
	if len(got) != 11 { // tok-b's answer is tok-a's job
		t.Fatalf("answers %v", got)
	}
	if want := []state.MessageType{state.RegisterJobsBinaryType, state.RegisterJobsBinaryType, state.RegisterJobsBinaryType}; fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Fatalf("entries %v, want %v", entries, want)
	}
	for id, a := range got {
		j := fsm.Store().Snapshot().Job(nil, id)
		if j == nil || j.CreateIndex != a.idx {
			t.Errorf("job %s: %+v, answered at index %d", id, j, a.idx)
		}
		if id != "first" && id != "second" && a.idx != 3 {
			t.Errorf("job %s committed at %d, want 3 (the batch)", id, a.idx)
		}
	}
	if fsm.Store().Snapshot().Job(nil, "tok-b") != nil {
		t.Error("the second submission with the token made a job")
	}
	if inFlight() != 0 || queued() != 0 {
		t.Errorf("%d in flight, %d queued after all answered", inFlight(), queued())
	}
}

// TestRegisterBatcherFailsWhole: an entry Raft refuses (here: not the
// leader) answers every submission it carried with that error.
func TestRegisterBatcherFailsWhole(t *testing.T) {
	gate := make(chan struct{})
	notLeader := errors.New("not the leader")
	b := &registerBatcher{apply: func(context.Context, []byte) (any, uint64, error) { <-gate; return nil, 0, notLeader }}
	e, _ := state.EncodeRegisterJobItem(&state.RegisterJobRequest{Job: &api.Job{ID: "a"}})
	errs := make(chan error, 10)
	for range 10 {
		go func() { _, _, err := b.register(e); errs <- err }()
	}
	waitFor(t, 5*time.Second, "a queue", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 8 })
	close(gate)
	for range 10 {
		if err := <-errs; !errors.Is(err, notLeader) {
			t.Fatalf("err %v", err)
		}
	}
}

// TestSubmitConcurrentGroupCommit: concurrent submissions through the API
// of a real server are each answered once committed (the job is in the
// state at the answered index), with distinct jobs, one job per
// idempotency key, and fewer entries than jobs.
func TestSubmitConcurrentGroupCommit(t *testing.T) {
	s, c := testServer(t, "")
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	res := make([]*api.SubmitResponse, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key-%d", i)
			if i%8 == 0 {
				key = "shared-key"
			}
			res[i], errs[i] = c.SubmitJobWithKey(ctx, []byte(gangSpec), key)
			if errs[i] == nil {
				// Acknowledged means applied here: the job is readable.
				if j := s.Store().Snapshot().Job(nil, res[i].ID); j == nil || j.CreateIndex > res[i].Index {
					errs[i] = fmt.Errorf("job %s answered at %d: %+v", res[i].ID, res[i].Index, j)
				}
			}
		}()
	}
	wg.Wait()
	ids, indexes := map[string]bool{}, map[uint64]bool{}
	shared := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("submission %d: %v", i, errs[i])
		}
		ids[res[i].ID] = true
		if i%8 == 0 {
			if shared != "" && shared != res[i].ID {
				t.Fatalf("the shared key gave %s and %s", shared, res[i].ID)
			}
			shared = res[i].ID
		}
	}
	jobs := s.Store().Snapshot().Jobs(nil)
	if want := n - n/8 + 1; len(ids) != want || len(jobs) != want {
		t.Fatalf("%d distinct answers, %d jobs, want %d", len(ids), len(jobs), want)
	}
	for _, j := range jobs {
		indexes[j.CreateIndex] = true
	}
	t.Logf("%d jobs in %d entries", len(jobs), len(indexes))
}

// TestSubmitIDCollision: a new job's random ID that an existing job
// already has is picked again, not answered with a 409; a submission
// whose every pick collides still gets the conflict.
func TestSubmitIDCollision(t *testing.T) {
	s, c := testServer(t, "")
	ctx := context.Background()
	picks := make(chan string, 10)
	s.jobSuffix = func() string { return <-picks }
	picks <- "aaaaaa"
	first, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil || first.ID != "gang-aaaaaa" {
		t.Fatalf("first: %+v %v", first, err)
	}
	picks <- "aaaaaa"
	picks <- "bbbbbb"
	second, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil || second.ID != "gang-bbbbbb" {
		t.Fatalf("second: %+v %v, want gang-bbbbbb", second, err)
	}
	for range maxIDAttempts {
		picks <- "aaaaaa"
	}
	if _, err := c.SubmitJob(ctx, []byte(gangSpec)); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("every pick taken: %v", err)
	}
	if n := len(s.Store().Snapshot().Jobs(nil)); n != 2 {
		t.Fatalf("%d jobs, want 2", n)
	}
}
