package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
)

func newJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Submit, inspect and cancel jobs"}
	cmd.AddCommand(newJobSubmitCmd(g), newJobValidateCmd(g), newJobStatusCmd(g), newJobListCmd(g), newJobCancelCmd(g), newJobLogsCmd(g))
	return cmd
}

// readSpec reads and checks a spec file ("-" is stdin).
func readSpec(path string) (*spec.Job, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, spec.MaxSpecBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usagef("read spec: %v", err)
	}
	job, err := spec.Parse(data)
	if err != nil {
		var fe spec.Errors
		if errors.As(err, &fe) {
			lines := make([]string, len(fe))
			for i, e := range fe {
				lines[i] = "  " + e.Error()
			}
			return nil, usagef("%s is invalid:\n%s", path, strings.Join(lines, "\n"))
		}
		return nil, usagef("%s: %v", path, err)
	}
	// The builtin runtime's files are named from where the user stands;
	// the nodes need absolute paths (or URIs).
	if b := job.Task.Builtin; b != nil {
		for _, p := range []*string{&b.Data, &b.Base} {
			if *p != "" && !strings.Contains(*p, "://") && !filepath.IsAbs(*p) {
				if abs, err := filepath.Abs(*p); err == nil {
					*p = abs
				}
			}
		}
	}
	return job, nil
}

func newJobValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a job spec without submitting it",
		Args:  exactArgs(1, "a spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := readSpec(args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), job)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: %s job %q, %d replica(s) x %s\n", args[0], job.Kind, job.Name, job.Replicas, gpuAsk(job.Resources))
			return nil
		},
	}
}

func newJobSubmitCmd(g *globals) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a job spec (YAML or JSON; - reads stdin)",
		Args:  exactArgs(1, "a spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := readSpec(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			body, err := json.Marshal(job)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			resp, err := c.SubmitJob(ctx, body)
			if err != nil {
				return fmt.Errorf("submit: %w", err)
			}
			out := cmd.OutOrStdout()
			if !wait {
				if g.json() {
					return printJSON(out, resp)
				}
				fmt.Fprintln(out, resp.ID)
				return nil
			}
			if !g.json() {
				fmt.Fprintf(cmd.ErrOrStderr(), "submitted %s\n", resp.ID)
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			final, err := waitJob(ctx, c, resp.ID, cmd.ErrOrStderr(), !g.json())
			if err != nil {
				return err
			}
			if g.json() {
				if err := printJSON(out, final); err != nil {
					return err
				}
			} else {
				printJob(out, final)
			}
			if final.Status != api.JobSucceeded {
				return silentError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job to its end; exit non-zero unless it succeeds")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (0: no limit)")
	return cmd
}

// waitJob follows a job with blocking queries until it ends, drawing a live
// status line.
func waitJob(ctx context.Context, c *client.Client, id string, w io.Writer, live bool) (*api.Job, error) {
	var index uint64
	last := ""
	start := time.Now()
	tty := isTerminal(w)
	for {
		job, idx, err := c.Job(ctx, id, index, 10*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
			}
			if client.IsNotFound(err) {
				return nil, err
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		index = idx
		line := statusLine(job)
		if live && line != last {
			if tty {
				fmt.Fprintf(w, "\r\033[K[%5.1fs] %s", time.Since(start).Seconds(), line)
			} else {
				fmt.Fprintf(w, "[%5.1fs] %s\n", time.Since(start).Seconds(), line)
			}
			last = line
		}
		if job.Terminal() {
			if live && tty {
				fmt.Fprintln(w)
			}
			return job, nil
		}
	}
}

// isTerminal reports whether w is a character device (a live line can be
// redrawn in place there; elsewhere each change gets its own line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func statusLine(j *api.Job) string {
	counts := map[string]int{}
	for _, a := range j.Allocations {
		counts[a.Status]++
	}
	var parts []string
	for _, s := range []string{api.AllocPending, api.AllocRunning, api.AllocSucceeded, api.AllocFailed, api.AllocLost} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	line := fmt.Sprintf("%s: %s", j.ID, j.Status)
	if len(parts) > 0 {
		line += " (ranks: " + strings.Join(parts, ", ") + ")"
	}
	if j.Reason != "" {
		line += " - " + j.Reason
	}
	return line
}

func newJobStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Show a job, its allocations and why it is pending or failed",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			job, _, err := c.Job(cmd.Context(), args[0], 0, 0)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), job)
			}
			printJob(cmd.OutOrStdout(), job)
			return nil
		},
	}
}

func newJobListCmd(g *globals) *cobra.Command {
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			jobs, err := c.Jobs(cmd.Context(), status)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), jobs)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tRANKS\tGPUS\tAGE\tREASON")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Kind, j.Status, j.Spec.Replicas, gpuCount(j.Spec.GPUMilliTotal()), age(j.SubmitTime), truncate(j.Reason, 80))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status")
	return cmd
}

func newJobCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job and stop its tasks",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			if err := c.CancelJob(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": args[0], "status": api.JobCancelled})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancelled %s\n", args[0])
			return nil
		},
	}
}

func newJobLogsCmd(g *globals) *cobra.Command {
	var (
		rank   int
		stderr bool
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a rank's output (streamed from its node through the server)",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rank < 0 {
				return usagef("--rank must be >= 0, got %d", rank)
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			rc, err := c.JobLogs(cmd.Context(), args[0], rank, stream, follow)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(cmd.OutOrStdout(), rc)
			if err != nil && cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().IntVar(&rank, "rank", 0, "rank whose output to print")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming until the task ends")
	return cmd
}
