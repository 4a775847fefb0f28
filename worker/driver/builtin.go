package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/spec"
)

// Builtin runs Ark's own runtime: the agent's executable as `ark task train`
// for finetune jobs, `ark task eval` for eval jobs and `ark task serve` for
// inference replicas, with the job's
// task.builtin settings as flags, under the same supervisor and process
// group as any exec task (see worker/train).
type Builtin struct{}

// Name is "builtin".
func (Builtin) Name() string { return spec.DriverBuiltin }

// Start starts the builtin runtime for the task.
func (Builtin) Start(ctx context.Context, cfg TaskConfig) (Handle, error) {
	argv, err := BuiltinCommand(cfg)
	if err != nil {
		return nil, fmt.Errorf("allocation %s: %w", cfg.AllocID, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("allocation %s: find the agent's executable: %w", cfg.AllocID, err)
	}
	run := cfg
	// Builtin stays: its data and base paths are what the task may read
	// (see confinePaths).
	run.Task = spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: append([]string{self}, argv...)}, Builtin: cfg.Task.Builtin}
	return Exec{}.Start(ctx, run)
}

// BuiltinCommand is the ark subcommand and flags a builtin task runs.
func BuiltinCommand(cfg TaskConfig) ([]string, error) {
	b := cfg.Task.Builtin
	if b == nil {
		return nil, fmt.Errorf("builtin task has no task.builtin settings")
	}
	threads := max(1, int(cfg.CPUMilli/1000))
	var argv []string
	switch cfg.Kind {
	case spec.KindFinetune:
		argv = []string{"task", "train", "--model", b.Model, "--data", b.Data, "--threads", strconv.Itoa(threads)}
		if b.Steps > 0 {
			argv = append(argv, "--steps", strconv.Itoa(b.Steps))
		}
		if b.Batch > 0 {
			argv = append(argv, "--batch", strconv.Itoa(b.Batch))
		}
		if b.LR > 0 {
			argv = append(argv, "--lr", strconv.FormatFloat(b.LR, 'g', -1, 64))
		}
		if b.Base != "" {
			argv = append(argv, "--base", b.Base)
		}
		if l := b.LoRA; l != nil {
			argv = append(argv, "--lora-rank", strconv.Itoa(l.Rank))
			if l.Alpha > 0 {
				argv = append(argv, "--lora-alpha", strconv.FormatFloat(l.Alpha, 'g', -1, 64))
			}
			if len(l.Targets) > 0 {
				argv = append(argv, "--lora-targets", strings.Join(l.Targets, ","))
			}
		}
		if cfg.CheckpointEvery > 0 {
			argv = append(argv, "--every", strconv.Itoa(cfg.CheckpointEvery))
		}
		if cfg.CheckpointKeep > 0 {
			argv = append(argv, "--keep", strconv.Itoa(cfg.CheckpointKeep))
		}
	case spec.KindEval:
		argv = []string{"task", "eval", "--ckpt", b.Base, "--data", b.Data}
		if b.Batch > 0 {
			argv = append(argv, "--batch", strconv.Itoa(b.Batch))
		}
	case spec.KindInference:
		argv = []string{"task", "serve", "--ckpt", b.Base, "--threads", strconv.Itoa(threads)}
		for _, a := range b.Adapters {
			argv = append(argv, "--adapter", a.Name+"="+a.URI)
			if a.Pinned {
				argv = append(argv, "--pin", a.Name)
			}
		}
		if len(b.Rules) > 0 {
			rules, err := json.Marshal(b.Rules)
			if err != nil {
				return nil, fmt.Errorf("task.builtin.rules: %w", err)
			}
			argv = append(argv, "--rules-json", string(rules))
		}
		if r := b.RateLimit; r != nil {
			argv = append(argv, "--model-rate", strconv.FormatFloat(r.PerModel, 'g', -1, 64), "--model-burst", strconv.Itoa(r.Burst))
		}
		if b.Weights != "" {
			argv = append(argv, "--weights", b.Weights)
		}
	default:
		return nil, fmt.Errorf("the builtin runtime runs finetune, eval and inference jobs, not %s", cfg.Kind)
	}
	return argv, nil
}
