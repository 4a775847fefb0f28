package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/worker/train"
)

func init() {
	taskCommands = append(taskCommands, newTrainCmd, newTaskEvalCmd, newTaskGenerateCmd)
}

// envInt reads an integer variable of the task contract; unset is def.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, usagef("%s=%q: not an integer", name, v)
	}
	return n, nil
}

// defaultThreads shares the machine's cores among the ranks on this node
// (LOCAL_WORLD_SIZE), at least one each.
func defaultThreads() int {
	local, err := envInt("LOCAL_WORLD_SIZE", 1)
	if err != nil || local < 1 {
		local = 1
	}
	return max(1, runtime.NumCPU()/local)
}

func readDataset(path string, valFrac float64) (*train.Dataset, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--data: %w", err)}
	}
	return train.NewDataset(text, valFrac), nil
}

func newTrainCmd() *cobra.Command {
	var (
		model, data, base, ckptURI string
		device                     string
		steps, batch, every, keep  int
		threads, logEvery, evalWin int
		lr, valFrac                float64
		seed                       uint64
		lora                       train.LoRAConfig
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train (or fine-tune from --base) a builtin GPT, data-parallel across the job's ranks",
		Long: `Trains a builtin model on a text file (byte-level tokens). With WORLD_SIZE > 1
the ranks meet at MASTER_ADDR:MASTER_PORT (RANK, WORLD_SIZE as Ark sets them)
and average gradients every step; with WORLD_SIZE unset or 1 it trains alone.
--batch is sequences per rank per step; each rank samples its own shard of the
text, in an order fixed by --seed and the step.

Checkpoints (parameters and AdamW moments, written by rank 0) go every --every
steps and at the end to --checkpoint (default $ARK_CHECKPOINT_URI, a
STORE_URI/JOB location such as file:///data/ckpt/ns/job-1), keeping --keep.
On start, the newest complete checkpoint there is resumed (a restarted gang
continues where it stopped); otherwise --base (a checkpoint STORE_URI/JOB/STEP,
or STORE_URI/JOB for its newest) gives the starting parameters; otherwise a
random initialisation from --seed.

Prints a progress line (step, loss averaged over ranks, learning rate, gradient
norm, tokens/s per rank) every --log-every steps, and rank 0 prints the
held-out loss before and after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" && base == "" {
				return usagef("--model or --base is required (a builtin model to train from scratch, or the checkpoint to fine-tune)")
			}
			if data == "" {
				return usagef("--data is required")
			}
			ds, err := readDataset(data, valFrac)
			if err != nil {
				return err
			}
			rank, err := envInt("RANK", 0)
			if err != nil {
				return err
			}
			world, err := envInt("WORLD_SIZE", 1)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			// The namespace's checkpoint key, from the agent: seals what
			// this job saves, opens what it resumes from and its base.
			keys, err := train.TaskKeys()
			if err != nil {
				return err
			}
			// Without --model the base says what it is: an imported
			// GPT-2 has no builtin preset.
			var cfg train.Config
			if model != "" {
				if cfg, err = train.Preset(model); err != nil {
					return usageError{err}
				}
			} else {
				if cfg, err = train.CheckpointConfig(ctx, base, keys); err != nil {
					return fmt.Errorf("--base %s: %w", base, err)
				}
				model = "from-base"
			}
			opts := train.Options{
				ModelName: model, Data: ds, Steps: steps, Batch: batch, LR: lr, Seed: seed,
				Every: every, Keep: keep, Base: base, Keys: keys, LogEvery: logEvery, Log: out,
			}
			if lora.Rank > 0 {
				l := lora.WithDefaults()
				if err := l.Validate(cfg); err != nil {
					return usageError{err}
				}
				if base == "" {
					return usagef("--lora-rank needs --base: the frozen checkpoint the adapter trains on")
				}
				opts.LoRA = &l
			}
			if ckptURI != "" {
				if opts.Store, opts.Job, err = train.OpenJobStore(ctx, ckptURI); err != nil {
					return usageError{err}
				}
			}
			if rep := newAgentReporter(); rep != nil {
				defer rep.close(3 * time.Second)
				// Every rank's figures go to its agent's /metrics; only rank
				// 0 speaks for the job to the servers.
				// Rank 0's progress line (OnProgress runs just before
				// OnFigures, on the same goroutine) goes in the same report.
				var line string
				opts.OnFigures = func(step int, loss, tps float64) {
					r := api.TaskReport{Progress: line, Metrics: &api.TaskMetrics{Train: &api.TrainMetrics{Step: int64(step), Loss: loss, TokensPerSecond: tps}}}
					if r.Metrics.Check() != nil { // a diverged loss (NaN) is no figure; the line still goes
						r.Metrics = nil
					}
					if r.Progress != "" || r.Metrics != nil {
						rep.send(r)
					}
					line = ""
				}
				if rank == 0 {
					opts.OnProgress = func(_ int, l string) { line = l }
					// The step's URI as the store names it: JoinURI keeps an
					// endpoint's query (s3://b?endpoint=...) after the path.
					store, job, _ := train.SplitJobURI(ckptURI)
					opts.OnCheckpoint = func(step int64) {
						rep.send(api.TaskReport{Checkpoint: &api.CheckpointRef{
							URI: checkpoint.JoinURI(store, checkpoint.Ref{Job: job, Step: step}), Step: step, Time: time.Now().UTC(),
						}})
					}
				}
			}
			var comm *collective.Communicator
			if world > 1 {
				if comm, err = collective.NewFromEnv(ctx); err != nil {
					return err
				}
				defer comm.Close()
				for _, f := range comm.Fallbacks() {
					fmt.Fprintf(out, "collective: fell back to tcp: %v\n", f)
				}
				fmt.Fprintf(out, "collective: %d ranks, to rank %d over %s, recursive doubling up to %s then ring\n",
					comm.Size(), (rank+1)%world, comm.TransportTo((rank+1)%world), spec.FormatBytes(int64(comm.Crossover())))
			}
			if threads <= 0 {
				threads = defaultThreads()
			}
			d, err := openDevice(device, threads, out)
			if err != nil {
				return err
			}
			defer d.Close()
			m, err := train.NewModel(d, cfg)
			if err != nil {
				return err
			}
			var tc train.Comm
			if comm != nil {
				tc = comm
				dc, closeDC, err := deviceComm(ctx, d, comm, out)
				if err != nil {
					return err
				}
				defer closeDC()
				opts.DeviceComm = dc
			}
			tr, err := train.New(ctx, m, tc, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "model %s: %d parameters, %d layers, width %d, context %d; rank %d/%d, %s; %d tokens/step/rank; start at step %d of %d\n",
				model, m.NumParams(), cfg.Layers, cfg.Width, cfg.Context, rank, world, describe(d), batch*cfg.Context, tr.StartStep(), steps)
			evalAt := func(when string) error {
				if rank != 0 || evalWin <= 0 {
					return nil
				}
				ev, err := m.Eval(ds, batch, evalWin)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "eval %s: held-out loss %.4f perplexity %.2f over %d tokens\n", when, ev.Loss, ev.Perplexity, ev.Tokens)
				return nil
			}
			if tr.StartStep() > steps {
				fmt.Fprintf(out, "the newest checkpoint already reaches step %d of %d: nothing to train\n", tr.StartStep()-1, steps)
				return evalAt("after")
			}
			if err := evalAt("before"); err != nil {
				return err
			}
			st, err := tr.Run(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "done: steps %d-%d, loss %.4f -> %.4f, %.0f tokens/s per rank, %s (compute %s, exposed all-reduce %s, checkpoint stall %s)\n",
				st.StartStep, st.LastStep, st.FirstLoss, st.LastLoss, st.TokensPerSec, st.Elapsed.Round(time.Millisecond),
				st.Compute.Round(time.Millisecond), st.ExposedComm.Round(time.Millisecond), st.CkptStall.Round(time.Millisecond))
			return evalAt("after")
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "gpt-tiny", fmt.Sprintf("builtin model %v; empty with --base: the base's own shape (an imported model)", train.Presets()))
	f.StringVar(&data, "data", "", "training text file (the last --val-frac is held out)")
	f.IntVar(&steps, "steps", 300, "total training steps")
	f.IntVar(&batch, "batch", 8, "sequences per rank per step")
	f.Float64Var(&lr, "lr", 3e-3, "peak learning rate (warmup, then cosine decay to 10%)")
	f.StringVar(&base, "base", "", "checkpoint to fine-tune from: STORE_URI/JOB/STEP or STORE_URI/JOB (newest)")
	f.StringVar(&ckptURI, "checkpoint", os.Getenv("ARK_CHECKPOINT_URI"), "checkpoint location STORE_URI/JOB (env ARK_CHECKPOINT_URI); empty: none")
	f.IntVar(&every, "every", 0, "steps between checkpoints (0: only at the end)")
	f.IntVar(&keep, "keep", 3, "complete checkpoints to keep (0: all)")
	f.IntVar(&threads, "threads", 0, "CPU threads (default: cores / LOCAL_WORLD_SIZE)")
	f.StringVar(&device, "device", "auto", "compute device: auto (cuda when the task has a GPU and the driver loads, else cpu), cpu or cuda; on cuda with several ranks gradients are averaged by NCCL when libnccl.so.2 loads, else through host memory")
	f.IntVar(&logEvery, "log-every", 10, "steps between progress lines")
	f.IntVar(&evalWin, "eval-windows", 64, "held-out windows evaluated before and after (0: no eval)")
	f.Float64Var(&valFrac, "val-frac", 0.1, "fraction of the text held out for eval")
	f.Uint64Var(&seed, "seed", 1337, "seed of the initialisation and the data order")
	f.IntVar(&lora.Rank, "lora-rank", 0, "train a LoRA adapter of this rank on the frozen --base instead of every weight (0: full fine-tune)")
	f.Float64Var(&lora.Alpha, "lora-alpha", 0, "LoRA scale numerator: updates are scaled by alpha/rank (0: twice the rank)")
	f.StringSliceVar(&lora.Targets, "lora-targets", nil, "layers the adapter adapts: attn, mlp (default both)")
	return cmd
}

func newTaskEvalCmd() *cobra.Command {
	var (
		ckpts                        []string
		data, device                 string
		batch, windows, answerTokens int
		valFrac                      float64
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Held-out loss and perplexity of checkpoints on a text file, or their answers to prompts",
		Long: `Evaluates each --ckpt (STORE_URI/JOB/STEP, or STORE_URI/JOB for its newest)
on the held-out tail (--val-frac) of --data: mean loss per token and perplexity,
one row per checkpoint (for example the base and the fine-tuned model). A LoRA
adapter's checkpoint is evaluated on its base: a --ckpt before it with the same
parameters (--ckpt BASE,ADAPTER), else the base the adapter records.

A --data file ending in .jsonl holds prompt/answer pairs instead, one JSON object
a line ({"prompt": "Q: ...\nA:", "answer": "..."}): each checkpoint answers every
prompt greedily (up to --answer-tokens tokens, the answer ending at its first
newline), and the row gives the fraction of exact matches and the mean word
overlap (F1) with the expected answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ckpts) == 0 || data == "" {
				return usagef("--ckpt and --data are required")
			}
			var ds *train.Dataset
			var pairs []train.QAPair
			var err error
			if strings.HasSuffix(data, ".jsonl") {
				pairs, err = readQAPairs(data)
			} else {
				ds, err = readDataset(data, valFrac)
			}
			if err != nil {
				return err
			}
			d, err := openDevice(device, 0, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer d.Close()
			keys, err := train.TaskKeys()
			if err != nil {
				return err
			}
			ev := train.NewEvaluator(d, keys)
			// The ranks of an eval job share its candidates: each scores
			// its own, and the job (the comparison) ends when all have.
			rank, err := envInt("RANK", 0)
			if err != nil {
				return err
			}
			world, err := envInt("WORLD_SIZE", 1)
			if err != nil {
				return err
			}
			ckpts = shardCandidates(ckpts, rank, world)
			if world > 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "rank %d of %d evaluates %d of the candidates\n", rank, world, len(ckpts))
			}
			var rows []train.EvalRow
			for _, c := range ckpts {
				var r train.EvalRow
				if pairs != nil {
					r, err = ev.EvalQA(cmd.Context(), c, pairs, answerTokens)
				} else {
					r, err = ev.Eval(cmd.Context(), c, ds, batch, windows)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", c, err)
				}
				rows = append(rows, r)
			}
			reportEvals(ckpts, data, rows)
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"results": rows})
			}
			out := cmd.OutOrStdout()
			if pairs != nil {
				fmt.Fprintln(out, "| checkpoint | step | exact match | overlap (F1) | pairs |")
				fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: |")
			} else {
				fmt.Fprintln(out, "| checkpoint | step | loss | perplexity | tokens |")
				fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: |")
			}
			for _, r := range rows {
				name := r.Checkpoint
				if r.Adapter {
					name += " (lora adapter on " + r.Base + ")"
				}
				if pairs != nil {
					fmt.Fprintf(out, "| %s | %d | %.3f | %.3f | %d |\n", name, r.Step, *r.ExactMatch, *r.Overlap, r.Samples)
				} else {
					fmt.Fprintf(out, "| %s | %d | %.4f | %.2f | %d |\n", name, r.Step, r.Loss, r.Perplexity, r.Tokens)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&ckpts, "ckpt", nil, "checkpoint(s) to evaluate (repeat or comma-separate)")
	f.StringVar(&data, "data", "", "text file; its last --val-frac is the held-out split")
	f.IntVar(&batch, "batch", 8, "sequences per forward pass")
	f.IntVar(&windows, "windows", 256, "held-out windows (of the model's context) to evaluate at most")
	f.Float64Var(&valFrac, "val-frac", 0.1, "held-out fraction (as in training)")
	f.IntVar(&answerTokens, "answer-tokens", 0, "with a .jsonl --data: tokens each answer may take (0: the expected answer's length and 4 more, at most 64)")
	f.StringVar(&device, "device", "auto", "compute device: auto, cpu or cuda")
	return cmd
}

// readQAPairs reads a .jsonl file of prompt/answer pairs.
func readQAPairs(path string) ([]train.QAPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pairs, err := train.ReadQAPairs(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pairs, nil
}

func newTaskGenerateCmd() *cobra.Command {
	var (
		ckpt, prompt string
		device       string
		n            int
		temperature  float64
		seed         uint64
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with a checkpoint (greedy, or sampled with --temperature)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ckpt == "" {
				return usagef("--ckpt is required")
			}
			d, err := openDevice(device, 0, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer d.Close()
			keys, err := train.TaskKeys()
			if err != nil {
				return err
			}
			m, _, err := train.LoadModel(cmd.Context(), d, ckpt, keys)
			if err != nil {
				return err
			}
			text, err := m.Generate([]byte(prompt), n, temperature, seed)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s%s\n", prompt, text)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "ckpt", "", "checkpoint: STORE_URI/JOB/STEP or STORE_URI/JOB (newest)")
	f.StringVar(&prompt, "prompt", "", "text to continue")
	f.IntVar(&n, "tokens", 200, "tokens to generate (bytes for Ark's byte-level models)")
	f.Float64Var(&temperature, "temperature", 0, "sampling temperature (0: greedy)")
	f.Uint64Var(&seed, "seed", 1, "sampling seed")
	f.StringVar(&device, "device", "auto", "compute device: auto, cpu or cuda")
	return cmd
}

// shardCandidates is rank's share of an eval job's candidates: every
// world-th one from its rank, so that ranks of different speeds get an
// even count.
func shardCandidates(ckpts []string, rank, world int) []string {
	if world <= 1 || rank < 0 || rank >= world {
		return ckpts
	}
	var mine []string
	for i := rank; i < len(ckpts); i += world {
		mine = append(mine, ckpts[i])
	}
	return mine
}

// reportEvals passes an eval task's results to its agent, which records
// them on the allocation; the leader then files them in the model catalog
// against the versions the job's candidates named. The report lands
// before the task exits: a report after the end is ignored.
func reportEvals(ckpts []string, data string, rows []train.EvalRow) {
	rep := newAgentReporter()
	if rep == nil {
		return
	}
	evals := make([]api.EvalResult, len(rows))
	for i, r := range rows {
		evals[i] = api.EvalResult{Dataset: data, Checkpoint: strings.TrimSpace(ckpts[i]), Loss: r.Loss, Perplexity: r.Perplexity, Tokens: int64(r.Tokens),
			ExactMatch: r.ExactMatch, Overlap: r.Overlap, Samples: r.Samples}
	}
	rep.send(api.TaskReport{Evals: evals})
	rep.close(10 * time.Second)
}

// agentReporter posts progress and checkpoints to the task's agent
// (ARK_AGENT_ADDR, as ark task report does) from its own goroutine, so a
// slow or absent agent never stalls training: reports queue up to a few and
// the oldest progress lines are dropped beyond that.
type agentReporter struct {
	url  string
	ch   chan api.TaskReport
	done chan struct{}
}

// newAgentReporter returns nil outside an Ark task.
func newAgentReporter() *agentReporter {
	agent, alloc := os.Getenv("ARK_AGENT_ADDR"), os.Getenv("ARK_ALLOC_ID")
	if agent == "" || alloc == "" {
		return nil
	}
	r := &agentReporter{url: agent + "/v1/allocations/" + alloc + "/report", ch: make(chan api.TaskReport, 8), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *agentReporter) send(rep api.TaskReport) {
	select {
	case r.ch <- rep:
	default: // full: drop a progress line, never a checkpoint
		if rep.Checkpoint != nil {
			r.ch <- rep
		}
	}
}

func (r *agentReporter) run() {
	defer close(r.done)
	client := &http.Client{Timeout: 5 * time.Second}
	for rep := range r.ch {
		body, _ := json.Marshal(rep)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+os.Getenv("ARK_TASK_TOKEN"))
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		cancel()
	}
}

// close sends what is queued, waiting at most wait.
func (r *agentReporter) close(wait time.Duration) {
	close(r.ch)
	select {
	case <-r.done:
	case <-time.After(wait):
	}
}
