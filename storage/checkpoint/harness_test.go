package checkpoint_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
)

// trainer stands in for the builtin trainer until it lands: world ranks,
// each with float32 parameters and optimizer state that every step
// updates deterministically, checkpointing every `every` steps through an
// AsyncWriter and resuming from checkpoint.Latest.
type trainer struct {
	job   string
	world int
	n     int // parameters per rank
	step  int64
	ranks []rankState
}

type rankState struct{ params, moment []float32 }

func newTrainer(job string, world, n int) *trainer {
	tr := &trainer{job: job, world: world, n: n}
	for r := range world {
		rs := rankState{params: make([]float32, n), moment: make([]float32, n)}
		for i := range rs.params {
			rs.params[i] = float32(r+1) * float32(i%97) / 97
		}
		tr.ranks = append(tr.ranks, rs)
	}
	return tr
}

func (tr *trainer) trainStep() {
	tr.step++
	for _, rs := range tr.ranks {
		for i := range rs.params {
			g := float32(math.Sin(float64(rs.params[i]) + float64(tr.step)))
			rs.moment[i] = 0.9*rs.moment[i] + 0.1*g
			rs.params[i] -= 0.01 * rs.moment[i]
		}
	}
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesf32(b []byte, v []float32) {
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

func (tr *trainer) state() *checkpoint.State {
	st := &checkpoint.State{Job: tr.job, Step: tr.step, WorldSize: tr.world,
		Metadata: map[string]string{"step": strconv.FormatInt(tr.step, 10)}}
	for r, rs := range tr.ranks {
		st.Shards = append(st.Shards, checkpoint.Shard{Rank: r, Tensors: []checkpoint.Tensor{
			{Name: fmt.Sprintf("r%d.params", r), DType: "f32", Shape: []int64{int64(tr.n)}, Data: f32bytes(rs.params)},
			{Name: fmt.Sprintf("r%d.moment", r), DType: "f32", Shape: []int64{int64(tr.n)}, Data: f32bytes(rs.moment)},
		}})
	}
	return st
}

// resume loads the newest complete checkpoint, or starts fresh.
func resume(t *testing.T, s storage.Store, job string, world, n int) *trainer {
	t.Helper()
	tr := newTrainer(job, world, n)
	c, err := checkpoint.Latest(t.Context(), s, job, nil)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return tr
	}
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	st, err := c.Load(t.Context())
	if err != nil {
		t.Fatalf("resume from %s: %v", c.Ref, err)
	}
	tr.step = st.Step
	for r, sh := range st.Shards {
		bytesf32(sh.Tensors[0].Data, tr.ranks[r].params)
		bytesf32(sh.Tensors[1].Data, tr.ranks[r].moment)
	}
	return tr
}

// runTraining trains until step `until` (or crashes at `crashAt`, aborting
// the checkpoint in flight) and returns the trainer.
func runTraining(t *testing.T, s storage.Store, tr *trainer, until, crashAt int64, every int64) *trainer {
	t.Helper()
	w := checkpoint.NewAsyncWriter(s, checkpoint.AsyncOptions{Keep: 2, Reserve: tr.state().Bytes()})
	for tr.step < until {
		tr.trainStep()
		if tr.step == crashAt {
			w.Abort()
			return tr
		}
		if tr.step%every == 0 {
			if _, err := w.Save(t.Context(), tr.state()); err != nil {
				t.Fatalf("step %d: Save: %v", tr.step, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return tr
}

// RunTrainerHarness trains with a crash and a resume and checks the result
// equals an uninterrupted run's, and that retention kept the newest two.
func RunTrainerHarness(t *testing.T, s storage.Store) {
	const world, n, every = 2, 20_000, 5
	want := newTrainer("harness", world, n)
	for want.step < 40 {
		want.trainStep()
	}

	tr := runTraining(t, s, newTrainer("harness", world, n), 40, 23, every)
	if tr.step != 23 {
		t.Fatalf("crash did not happen at step 23")
	}
	tr = resume(t, s, "harness", world, n)
	if tr.step != 20 && tr.step != 15 {
		t.Fatalf("resumed at step %d, want 20 (or 15 if 20 was still in flight at the crash)", tr.step)
	}
	tr = runTraining(t, s, tr, 40, -1, every)
	for r := range world {
		for i := range n {
			if tr.ranks[r].params[i] != want.ranks[r].params[i] {
				t.Fatalf("rank %d param %d: %v after crash and resume, %v uninterrupted", r, i, tr.ranks[r].params[i], want.ranks[r].params[i])
			}
		}
	}
	final := resume(t, s, "harness", world, n)
	if final.step != 40 {
		t.Errorf("latest checkpoint is step %d, want 40", final.step)
	}
	infos, err := checkpoint.List(t.Context(), s, "harness")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Step != 35 || infos[1].Step != 40 {
		t.Errorf("after retention: %+v, want steps 35 and 40", infos)
	}
}

func TestTrainerHarness(t *testing.T) {
	s, _ := newFileStore(t)
	RunTrainerHarness(t, s)
}

// slowStore delays every put and records how many checkpoints have puts in
// flight at once.
type slowStore struct {
	storage.Store
	delay   time.Duration
	mu      sync.Mutex
	active  map[string]int // checkpoint prefix -> puts in flight
	maxCkpt int
}

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	ck := key[:len(key)-len(lastSeg(key))]
	s.mu.Lock()
	s.active[ck]++
	s.maxCkpt = max(s.maxCkpt, len(s.active))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.active[ck]--; s.active[ck] == 0 {
			delete(s.active, ck)
		}
		s.mu.Unlock()
	}()
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, r, size)
}

func lastSeg(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

func TestAsyncBackPressure(t *testing.T) {
	fs, _ := newFileStore(t)
	s := &slowStore{Store: fs, delay: 500 * time.Millisecond, active: map[string]int{}}
	var mu sync.Mutex
	var results []checkpoint.Result
	w := checkpoint.NewAsyncWriter(s, checkpoint.AsyncOptions{OnDone: func(r checkpoint.Result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}})
	st := testState("bp", 1, 2, 1000)
	start := time.Now()
	p1, err := w.Save(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("first Save stalled %v; it should only copy", d)
	}
	// The caller may scribble on its buffers once Save returns.
	for _, sh := range st.Shards {
		for _, tn := range sh.Tensors {
			clear(tn.Data)
		}
	}
	st2 := testState("bp", 2, 2, 1000)
	if _, err := w.Save(t.Context(), st2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p1.Done():
	default:
		t.Errorf("second Save returned while the first checkpoint was still in flight")
	}
	// A Save that cannot get the slot before its context ends fails.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Save(ctx, testState("bp", 3, 2, 10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Save under back-pressure with a short deadline = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Save(t.Context(), st2); !errors.Is(err, checkpoint.ErrClosed) {
		t.Errorf("Save after Close = %v, want ErrClosed", err)
	}
	if s.maxCkpt != 1 {
		t.Errorf("%d checkpoints were in flight at once, want 1", s.maxCkpt)
	}
	if len(results) != 2 || results[0].Err != nil || results[1].Err != nil {
		t.Fatalf("results = %+v", results)
	}
	c, err := checkpoint.Open(t.Context(), fs, checkpoint.Ref{Job: "bp", Step: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, testState("bp", 1, 2, 1000))
}

func TestAsyncAbortLeavesNoCheckpoint(t *testing.T) {
	fs, _ := newFileStore(t)
	s := &slowStore{Store: fs, delay: time.Second, active: map[string]int{}}
	w := checkpoint.NewAsyncWriter(s, checkpoint.AsyncOptions{})
	p, err := w.Save(t.Context(), testState("ab", 1, 2, 1000))
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if _, err := p.Wait(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("aborted upload = %v, want context.Canceled", err)
	}
	if _, err := checkpoint.Latest(t.Context(), fs, "ab", nil); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("Latest after abort = %v, want ErrNotFound", err)
	}
}
