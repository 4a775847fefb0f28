package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
)

// Comm is what the trainer needs of a *collective.Communicator.
type Comm interface {
	Rank() int
	Size() int
	AllReduceAsync(ctx context.Context, buf collective.Buffer, op collective.ReduceOp) *collective.Handle
	Broadcast(ctx context.Context, buf collective.Buffer, root int) error
}

// Options configures a training run. Zero values take the defaults noted.
type Options struct {
	ModelName string // recorded in checkpoints
	Data      *Dataset
	Steps     int     // total steps of the run (a resumed run stops at the same step)
	Batch     int     // sequences per rank per step
	LR        float64 // peak learning rate
	// WarmupSteps of linear warmup, then cosine decay to MinLRFrac*LR at
	// Steps. Default min(100, Steps/10); MinLRFrac default 0.1.
	WarmupSteps int
	MinLRFrac   float64
	WeightDecay float64 // default 0.01 (0 stays 0 only with NoWeightDecay)
	ClipNorm    float64 // global gradient norm bound, default 1
	Seed        uint64  // initialisation and data order

	// Store and Job name where checkpoints go (JOB/STEP/ in Store) and
	// where a restarted run resumes from; nil Store: neither.
	Store storage.Store
	Job   string
	Every int // steps between checkpoints; 0: only at the end (with a Store)
	Keep  int // complete checkpoints kept; 0 keeps all
	// Base is a checkpoint URI (STORE/JOB/STEP, or STORE/JOB for its
	// newest) whose parameters a fresh run starts from.
	Base string
	// LoRA, when set, trains a low-rank adapter on the frozen Base
	// (required) instead of every weight: checkpoints hold the adapter
	// alone, with the base's URI and parameter checksum, and a resumed run
	// refuses a base other than the one the adapter was trained on.
	LoRA *LoRAConfig
	// Keys seal every checkpoint saved and open the ones resumed from and
	// the base (the namespace's key, TaskKeys); nil: plain checkpoints.
	Keys *CheckpointKeys

	// DeviceComm, when set, all-reduces gradients in place in device
	// memory (NCCL on a CUDA device); otherwise a device with host memory
	// reduces in place through Comm, and any other device stages
	// gradients through host memory.
	DeviceComm DeviceComm
	// BucketElems is the smallest all-reduce bucket in float32s; smaller
	// ready ranges wait for the next block. Default 32768 (128 KiB).
	BucketElems int
	LogEvery    int       // default 10
	Log         io.Writer // progress lines; nil: none
	// OnProgress, if set, gets each progress line (without the rank) as
	// it is printed; OnCheckpoint (rank 0) the step of each checkpoint once
	// it is complete in the store, from the upload goroutine. Neither may
	// block for long.
	OnProgress   func(step int, line string)
	OnCheckpoint func(step int64)
	// OnFigures, if set, gets the figures of each progress line, on every
	// rank: what the task reports to its agent's /metrics.
	OnFigures func(step int, loss, tokensPerSec float64)
}

func (o Options) withDefaults() (Options, error) {
	if o.Data == nil || o.Steps < 1 || o.Batch < 1 || !(o.LR > 0) {
		return o, fmt.Errorf("%w: need data, steps >= 1, batch >= 1 and lr > 0", ErrConfig)
	}
	if o.WarmupSteps <= 0 {
		o.WarmupSteps = min(100, max(1, o.Steps/10))
	}
	if o.MinLRFrac <= 0 {
		o.MinLRFrac = 0.1
	}
	if o.WeightDecay == 0 {
		o.WeightDecay = 0.01
	}
	if o.ClipNorm <= 0 {
		o.ClipNorm = 1
	}
	if o.BucketElems <= 0 {
		o.BucketElems = 32768
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 10
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	// The checkpoint writer's goroutine logs too.
	o.Log = zapcore.Lock(zapcore.AddSync(o.Log))
	if o.LoRA != nil && o.Base == "" {
		return o, fmt.Errorf("%w: a lora fine-tune needs a base checkpoint to adapt", ErrConfig)
	}
	if o.Store != nil && !checkpoint.ValidName(o.Job) {
		return o, fmt.Errorf("%w: checkpoint job name %q", ErrConfig, o.Job)
	}
	return o, nil
}

// LRAt is the learning rate of step (from 1): linear warmup, cosine decay.
func (o Options) LRAt(step int) float64 {
	if step <= o.WarmupSteps {
		return o.LR * float64(step) / float64(o.WarmupSteps)
	}
	span := max(1, o.Steps-o.WarmupSteps)
	p := min(1, float64(step-o.WarmupSteps)/float64(span))
	lo := o.MinLRFrac * o.LR
	return lo + (o.LR-lo)*0.5*(1+math.Cos(math.Pi*p))
}

// Stats summarise a run, per rank.
type Stats struct {
	StartStep, LastStep int   // first step run (after a resume), last step run
	ResumedFrom         int64 // checkpoint step resumed from, -1 for none
	FirstLoss, LastLoss float64
	Tokens              int64 // tokens this rank processed
	Elapsed             time.Duration
	TokensPerSec        float64 // per rank
	Compute             time.Duration
	ExposedComm         time.Duration // waiting for all-reduces after backward
	CkptStall           time.Duration
	// GradPath is how gradients were averaged across ranks: "host" (in
	// place in host memory), "staged" (device memory copied through the
	// host) or "nccl" (in place on the device); "" with one rank.
	GradPath    string
	Checkpoints int
}

// Trainer runs data-parallel training of one Model: one Trainer per rank,
// each with its own Device.
type Trainer struct {
	m           *Model
	comm        Comm // nil with one rank
	rank, world int
	o           Options
	a           *acts
	red         gradReducer // averages gradients across ranks (world > 1)
	ids, tgts   []int32
	w           *checkpoint.AsyncWriter
	start       int
	resumed     int64
	stats       Stats
}

// New prepares rank comm.Rank() (rank 0 of 1 when comm is nil): rank 0
// restores the newest checkpoint of opts.Job from opts.Store, else the
// parameters of opts.Base, else a seeded random initialisation, and
// broadcasts the state so every rank starts identical.
func New(ctx context.Context, m *Model, comm Comm, opts Options) (*Trainer, error) {
	if opts.LoRA == nil && m.lora != nil { // the caller attached the adapter to train
		c := m.lora.Cfg
		opts.LoRA = &c
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Trainer{m: m, comm: comm, world: 1, o: o, start: 1, resumed: -1}
	if comm != nil {
		t.rank, t.world = comm.Rank(), comm.Size()
	}
	if o.LoRA != nil && m.lora == nil {
		a, err := NewAdapter(m.d, m.Cfg, *o.LoRA)
		if err != nil {
			return nil, err
		}
		if err := m.SetAdapter(a); err != nil {
			return nil, err
		}
	}
	T := m.Cfg.Context
	t.ids, t.tgts = make([]int32, o.Batch*T), make([]int32, o.Batch*T)
	if t.a, err = m.actsFor(o.Batch); err != nil {
		return nil, err
	}
	if t.world > 1 {
		if t.red, err = newReducer(m, comm, o.DeviceComm); err != nil {
			return nil, err
		}
	}
	if err := t.restore(ctx); err != nil {
		return nil, err
	}
	if o.Store != nil && t.rank == 0 {
		t.w = checkpoint.NewAsyncWriter(o.Store, checkpoint.AsyncOptions{
			Save: checkpoint.SaveOptions{Key: o.Keys.Seal()},
			Keep: o.Keep,
			OnDone: func(r checkpoint.Result) {
				if r.Err != nil {
					fmt.Fprintf(o.Log, "checkpoint %s failed: %v\n", r.Ref, r.Err)
					return
				}
				fmt.Fprintf(o.Log, "checkpoint %s: %d bytes, stall %s, upload %s\n", r.Ref, r.Bytes, r.Stall.Round(time.Microsecond), r.Upload.Round(time.Millisecond))
				if o.OnCheckpoint != nil {
					o.OnCheckpoint(r.Ref.Step)
				}
			},
		})
	}
	return t, nil
}

// StartStep is the first step Run will run (after any resume).
func (t *Trainer) StartStep() int { return t.start }

// Model returns the trained model.
func (t *Trainer) Model() *Model { return t.m }

// restore sets the starting state on rank 0 and broadcasts it.
func (t *Trainer) restore(ctx context.Context) error {
	m := t.m
	if err := m.Init(t.o.Seed); err != nil {
		return err
	}
	if m.lora != nil {
		if err := m.lora.Init(t.o.Seed); err != nil {
			return err
		}
	}
	if t.rank == 0 {
		if err := t.restoreRank0(ctx); err != nil {
			return err
		}
	}
	if t.world == 1 {
		return nil
	}
	hdr := []float32{float32(t.start), float32(t.resumed)}
	if err := t.comm.Broadcast(ctx, collective.Float32s(hdr), 0); err != nil {
		return fmt.Errorf("broadcast start step: %w", err)
	}
	t.start, t.resumed = int(hdr[0]), int64(hdr[1])
	// In place where the device memory is host memory; else through a
	// host copy (rank 0 reads its state out, the others write it in).
	ps := m.trainable()
	state := []kernels.Buffer{ps.params, ps.m, ps.v}
	if m.lora != nil {
		state = append(state, m.params) // the frozen base
	}
	h, inPlace := m.d.(kernels.HostAccess)
	for _, b := range state {
		var s []float32
		var err error
		if inPlace {
			s, err = h.Float32s(b)
		} else {
			s, err = kernels.Download(m.d, b)
		}
		if err != nil {
			return err
		}
		if err := t.comm.Broadcast(ctx, collective.Float32s(s), 0); err != nil {
			return fmt.Errorf("broadcast initial state: %w", err)
		}
		if !inPlace && t.rank != 0 {
			if err := kernels.WriteFloat32(m.d, b, s); err != nil {
				return fmt.Errorf("load broadcast state: %w", err)
			}
		}
	}
	return nil
}

// restoreRank0 loads what rank 0 starts from: for a LoRA run the base
// first (always: the adapter's checkpoints do not hold it), then the newest
// checkpoint of the job, else the base's parameters (full fine-tune).
func (t *Trainer) restoreRank0(ctx context.Context) error {
	m := t.m
	if m.lora != nil {
		c, err := OpenCheckpoint(ctx, t.o.Base, t.o.Keys)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		if err := m.loadBase(ctx, c); err != nil {
			return fmt.Errorf("base %s: %w", c.Ref, err)
		}
		if m.lora.Base, err = resolvedURI(t.o.Base, c.Ref); err != nil {
			return err
		}
		if m.lora.BaseSHA256, err = m.ParamsSHA256(); err != nil {
			return err
		}
		fmt.Fprintf(t.o.Log, "lora %s on frozen base %s: %d trainable parameters of %d\n", m.lora.Cfg, c.Ref, m.lora.n, m.n)
	}
	if t.o.Store != nil {
		c, err := checkpoint.Latest(ctx, t.o.Store, t.o.Job, t.o.Keys.keys())
		switch {
		case err == nil:
			st, err := c.Load(ctx)
			if err != nil {
				return fmt.Errorf("resume from %s: %w", c.Ref, err)
			}
			if m.lora != nil {
				err = m.lora.loadState(st, true)
			} else {
				err = m.loadState(st, true)
			}
			if err != nil {
				return fmt.Errorf("resume from %s: %w", c.Ref, err)
			}
			t.resumed = st.Step
			t.start = int(st.Step) + 1
			fmt.Fprintf(t.o.Log, "resumed from checkpoint %s\n", c.Ref)
		case !errors.Is(err, checkpoint.ErrNotFound):
			return fmt.Errorf("look for a checkpoint to resume from: %w", err)
		}
	}
	if t.resumed < 0 && t.o.Base != "" && m.lora == nil {
		c, err := OpenCheckpoint(ctx, t.o.Base, t.o.Keys)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		if err := m.loadBase(ctx, c); err != nil {
			return fmt.Errorf("base %s: %w", c.Ref, err)
		}
		fmt.Fprintf(t.o.Log, "starting from base %s\n", c.Ref)
	}
	return nil
}

// Run trains from StartStep to Steps and, with a Store, writes the last
// checkpoint before returning. When ctx ends or a step fails, rank 0 still
// checkpoints the last completed step (every rank holds that state: a failed
// step never reaches the optimizer) and waits for the upload, so a
// preempted or broken gang loses no finished work.
func (t *Trainer) Run(ctx context.Context) (Stats, error) {
	o := t.o
	st := &t.stats
	st.StartStep, st.ResumedFrom = t.start, t.resumed
	if t.red != nil {
		st.GradPath = t.red.name()
	}
	began := time.Now()
	intervalStart, intervalTokens := began, 0
	saved := t.start - 1 // newest step whose state is (being) checkpointed
	for step := t.start; step <= o.Steps; step++ {
		err := ctx.Err()
		if err != nil {
			err = fmt.Errorf("stopped before step %d: %w", step, err)
		}
		var loss float64
		var norm float32
		if err == nil {
			loss, norm, err = t.Step(ctx, step)
		}
		if err != nil {
			if t.w != nil && saved < step-1 {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Second)
				if serr := t.save(sctx, step-1, st.LastLoss); serr != nil {
					fmt.Fprintf(o.Log, "checkpoint of step %d on stop: %v\n", step-1, serr)
				}
				cancel()
			}
			return *st, errors.Join(err, t.closeWriter())
		}
		if step == t.start {
			st.FirstLoss = loss
		}
		st.LastLoss, st.LastStep = loss, step
		tok := o.Batch * t.m.Cfg.Context
		st.Tokens += int64(tok)
		intervalTokens += tok
		if step%o.LogEvery == 0 || step == o.Steps || step == t.start {
			now := time.Now()
			tps := float64(intervalTokens) / now.Sub(intervalStart).Seconds()
			line := fmt.Sprintf("step %d/%d loss %.4f lr %.2e grad-norm %.3f tok/s/rank %.0f", step, o.Steps, loss, o.LRAt(step), norm, tps)
			fmt.Fprintf(o.Log, "%s rank %d/%d\n", line, t.rank, t.world)
			if o.OnProgress != nil {
				o.OnProgress(step, line)
			}
			if o.OnFigures != nil {
				o.OnFigures(step, loss, tps)
			}
			intervalStart, intervalTokens = now, 0
		}
		if t.w != nil && ((o.Every > 0 && step%o.Every == 0) || step == o.Steps) {
			if err := t.save(ctx, step, loss); err != nil {
				return *st, errors.Join(err, t.closeWriter())
			}
			saved = step
		}
	}
	st.Elapsed = time.Since(began)
	if st.Elapsed > 0 {
		st.TokensPerSec = float64(st.Tokens) / st.Elapsed.Seconds()
	}
	if err := t.closeWriter(); err != nil {
		return *st, fmt.Errorf("last checkpoint: %w", err)
	}
	return *st, nil
}

// closeWriter waits for the checkpoint in flight (it is of a completed
// step, so worth keeping) and closes the writer.
func (t *Trainer) closeWriter() error {
	if t.w == nil {
		return nil
	}
	err := t.w.Close()
	t.w = nil
	return err
}

// Step runs one training step: this rank's batch forward and backward,
// gradients averaged across ranks in buckets started as backward produces
// them, clipping and AdamW. It returns the loss averaged over ranks and the
// gradient norm before clipping.
func (t *Trainer) Step(ctx context.Context, step int) (loss float64, norm float32, err error) {
	m, a, o := t.m, t.a, t.o
	T := m.Cfg.Context
	t0 := time.Now()
	if err := o.Data.tokensFor(m.tokenizer()).Batch(o.Seed, step, t.rank, t.world, o.Batch, T, t.ids, t.tgts); err != nil {
		return 0, 0, err
	}
	if err := m.setBatch(a, t.ids, t.tgts); err != nil {
		return 0, 0, err
	}
	ps := m.trainable()
	if err := m.d.Fill(ps.gradAll, 0); err != nil {
		return 0, 0, err
	}
	loss, err = m.forward(a, true)
	if err != nil {
		return 0, 0, err
	}
	var done func(int) error
	if t.world > 1 {
		// The loss rides in the gradient buffer's last slot, so its mean
		// across ranks costs no extra collective.
		if err := kernels.WriteFloat32(m.d, ps.lossSlot, []float32{float32(loss)}); err != nil {
			return 0, 0, err
		}
		hi := ps.n + 1 // gradients above hi are in flight
		done = func(block int) error {
			lo := 0
			if block >= 0 {
				if m.lora != nil {
					return nil // an adapter is small: one bucket at the end
				}
				lo = m.Cfg.blockStart(block)
			}
			if hi-lo < o.BucketElems && block >= 0 {
				return nil // wait for more
			}
			if err := t.red.start(ctx, lo, hi); err != nil {
				return fmt.Errorf("all-reduce gradients [%d:%d]: %w", lo, hi, err)
			}
			hi = lo
			return nil
		}
	}
	if err := m.backward(a, done); err != nil {
		if t.red != nil {
			_ = t.red.wait()
		}
		return 0, 0, err
	}
	t1 := time.Now()
	if t.world > 1 {
		if err := t.red.wait(); err != nil {
			return 0, 0, fmt.Errorf("step %d: all-reduce gradients: %w", step, err)
		}
		var l [1]float32
		if err := kernels.ReadFloat32(m.d, l[:], ps.lossSlot); err != nil {
			return 0, 0, err
		}
		loss = float64(l[0])
	}
	t2 := time.Now()
	t.stats.ExposedComm += t2.Sub(t1)
	norm, err = kernels.ClipGradNorm(m.d, m.acc, []kernels.Buffer{ps.grads}, float32(o.ClipNorm))
	if err != nil {
		return 0, 0, err
	}
	err = m.d.AdamW(ps.params, ps.grads, ps.m, ps.v, kernels.AdamWArgs{
		LR: float32(o.LRAt(step)), Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: float32(o.WeightDecay), Step: step,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("step %d: adamw: %w", step, err)
	}
	if err := m.d.Sync(); err != nil {
		return 0, 0, err
	}
	t.stats.Compute += t1.Sub(t0) + time.Since(t2)
	return loss, norm, nil
}

// save hands the state after step to the async writer (rank 0 only: every
// rank holds the same parameters and moments, so one full copy is the
// checkpoint).
func (t *Trainer) save(ctx context.Context, step int, loss float64) error {
	m := t.m
	began := time.Now()
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return err
	}
	ps, paramsName := m.trainable(), "params"
	if m.lora != nil {
		paramsName = loraTensor
	}
	var tensors []checkpoint.Tensor
	for _, tb := range []struct {
		name string
		b    kernels.Buffer
	}{{paramsName, ps.params}, {"adam_m", ps.m}, {"adam_v", ps.v}} {
		data, err := bufferBytes(m.d, tb.b)
		if err != nil {
			return err
		}
		tensors = append(tensors, checkpoint.Tensor{Name: tb.name, DType: "f32", Shape: []int64{int64(tb.b.Len())}, Data: data})
	}
	st := &checkpoint.State{
		Job: t.o.Job, Step: int64(step), WorldSize: t.world,
		Metadata: map[string]string{
			"model":  t.o.ModelName,
			"config": string(cfg),
			"loss":   strconv.FormatFloat(loss, 'f', 5, 64),
			"seed":   strconv.FormatUint(t.o.Seed, 10),
			"layout": "replicated: rank 0 writes " + paramsName + ", adam_m, adam_v",
		},
		Shards: []checkpoint.Shard{{Rank: 0, Tensors: tensors}},
	}
	if m.lora != nil {
		if err := m.lora.describe(st.Metadata); err != nil {
			return err
		}
	} else {
		// A fine-tuned imported model keeps its tokenizer; an adapter
		// takes its base's.
		tt, err := tokenizerTensor(m.tok, st.Metadata)
		if err != nil {
			return err
		}
		st.Shards[0].Tensors = append(st.Shards[0].Tensors, tt...)
	}
	if _, err := t.w.Save(ctx, st); err != nil {
		return fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	t.stats.CkptStall += time.Since(began)
	t.stats.Checkpoints++
	return nil
}
