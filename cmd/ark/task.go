package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// taskCommands are the commands a task runs from inside its allocation
// (ark task report, and the builtin runtime's ark task train ...).
var taskCommands []func() *cobra.Command

func init() {
	extraCommands = append(extraCommands, func(*globals) *cobra.Command {
		cmd := &cobra.Command{Use: "task", Short: "Commands a task runs inside its allocation"}
		cmd.AddCommand(newTaskReportCmd())
		for _, c := range taskCommands {
			cmd.AddCommand(c())
		}
		return cmd
	})
}

func newTaskReportCmd() *cobra.Command {
	var (
		progress, uri string
		step          int64
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Tell Ark this task's progress and its newest checkpoint (from inside a task)",
		Long: `Reports to the task's agent (ARK_AGENT_ADDR, for ARK_ALLOC_ID), which passes it to
the servers: the progress line shows in ark job status, and the newest
checkpoint is what preemption and restarts count lost work from.`,
		Example: `  ark task report --progress "step 120/300 loss 2.31"
  ark task report --checkpoint "$ARK_CHECKPOINT_URI/120" --step 120`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			agent, alloc := os.Getenv("ARK_AGENT_ADDR"), os.Getenv("ARK_ALLOC_ID")
			if agent == "" || alloc == "" {
				return usagef("ARK_AGENT_ADDR and ARK_ALLOC_ID are not set: run this inside an Ark task")
			}
			rep := api.TaskReport{Progress: progress}
			if uri != "" {
				rep.Checkpoint = &api.CheckpointRef{URI: uri, Step: step, Time: time.Now().UTC()}
			}
			if rep.Progress == "" && rep.Checkpoint == nil {
				return usagef("give --progress or --checkpoint")
			}
			return postReport(cmd.Context(), agent, alloc, rep)
		},
	}
	cmd.Flags().StringVar(&progress, "progress", "", "a progress line")
	cmd.Flags().StringVar(&uri, "checkpoint", "", "URI of the newest complete checkpoint")
	cmd.Flags().Int64Var(&step, "step", 0, "training step of that checkpoint")
	return cmd
}

// postReport sends a task report to the task's agent.
func postReport(ctx context.Context, agent, alloc string, rep api.TaskReport) error {
	return callAgent(ctx, http.MethodPost, agent, alloc, "report", rep, nil, 15*time.Second)
}

// callAgent calls the task's agent about its allocation (POST or GET
// /v1/allocations/ALLOC/WHAT) with its task token, sending in and
// decoding the answer into out when they are not nil.
func callAgent(ctx context.Context, method, agent, alloc, what string, in, out any, timeout time.Duration) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, agent+"/v1/allocations/"+alloc+"/"+what, body)
	if err != nil {
		return usageError{err}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("ARK_TASK_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach the agent at %s: %w", agent, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent refused the %s: %s %s", what, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out); err != nil {
		return fmt.Errorf("agent's %s: %w", what, err)
	}
	return nil
}
