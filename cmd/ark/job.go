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
	cmd.AddCommand(newJobSubmitCmd(g), newJobValidateCmd(g), newJobStatusCmd(g), newJobListCmd(g), newJobCancelCmd(g), newJobLogsCmd(g),
		newJobUpdateCmd(g), newJobPromoteCmd(g), newJobHistoryCmd(g), newJobRevertCmd(g), newJobAdapterCmd(g))
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
	// An eval job's base lists several checkpoints: each is made absolute.
	if b := job.Task.Builtin; b != nil {
		b.Data = absLocal(b.Data)
		if b.Base != "" {
			parts := strings.Split(b.Base, ",")
			for i, p := range parts {
				parts[i] = absLocal(strings.TrimSpace(p))
			}
			b.Base = strings.Join(parts, ",")
		}
	}
	return job, nil
}

// absLocal is a local path made absolute; URIs and "" are kept.
func absLocal(p string) string {
	if p == "" || strings.Contains(p, "://") || filepath.IsAbs(p) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func newJobSubmitCmd(g *globals) *cobra.Command {
	var wait, waitPending bool
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
			if err := checkLocalFiles(g, job, func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }); err != nil {
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
			final, err := waitJob(ctx, c, resp.ID, cmd.ErrOrStderr(), !g.json(), !waitPending)
			if errors.Is(err, errCannotFit) {
				return fmt.Errorf("job %s %s; it stays pending (ark job cancel %s to remove it, or --wait-pending to wait for nodes that fit)",
					resp.ID, final.Reason, resp.ID)
			}
			if err != nil {
				return waitStopped(cmd, resp.ID, timeout, err)
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
	cmd.Flags().BoolVar(&waitPending, "wait-pending", false, "with --wait, keep waiting while the job cannot fit on the cluster as it is (for nodes yet to join)")
	return cmd
}

// exitInterrupted is the exit code after Ctrl-C (128 + SIGINT), as shells
// report it.
const exitInterrupted = 130

// waitStopped explains why following job id stopped early: Ctrl-C only
// detaches (exit 130) and --timeout only gives up (exit 1); the job keeps
// running either way, which the user must not have to guess.
func waitStopped(cmd *cobra.Command, id string, timeout time.Duration, err error) error {
	var ws *waitStop
	if !errors.As(err, &ws) {
		return err
	}
	status := "submitted"
	if ws.last != nil {
		status = ws.last.Status
	}
	switch {
	case cmd.Context().Err() != nil: // Ctrl-C or SIGTERM
		fmt.Fprintf(cmd.ErrOrStderr(), "\ndetached; job %s keeps running (ark job cancel %s to stop it)\n", id, id)
		return silentError{exitInterrupted}
	case errors.Is(ws.err, context.DeadlineExceeded):
		return fmt.Errorf("gave up waiting for job %s after --timeout %s; it is still %s and keeps going (ark job status %s to check on it, ark job cancel %s to stop it)",
			id, timeout, status, id, id)
	}
	return ws.err
}

// waitStop is waitJob's error when its context ended, with the last state
// of the job it saw (nil if none).
type waitStop struct {
	last *api.Job
	err  error
}

func (e *waitStop) Error() string { return e.err.Error() }
func (e *waitStop) Unwrap() error { return e.err }

// errCannotFit is waitJob's error when the job cannot fit: no ready node
// could take it even if the cluster were idle (api.Job.CannotFit, set by
// the leader's placement pass: more GPUs than any node has, an unknown GPU
// model, more replicas than the nodes hold); the job it returns carries
// the reason.
var errCannotFit = errors.New("job cannot fit on this cluster")

// waitJob follows a job with blocking queries until it ends, drawing a live
// status line (liveline.go; live is false with -o json). With stopUnfit it returns the job and errCannotFit as soon
// as the job is pending because it cannot fit: waiting would be forever.
func waitJob(ctx context.Context, c *client.Client, id string, w io.Writer, live, stopUnfit bool) (*api.Job, error) {
	var index uint64
	start := time.Now()
	ll := newLiveLine(w, !live, true)
	defer ll.end(true)
	var seen *api.Job
	for {
		job, idx, err := c.Job(ctx, id, index, 10*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &waitStop{last: seen, err: fmt.Errorf("waiting for job %s: %w", id, ctx.Err())}
			}
			// The submit went to the leader; this read may reach a
			// follower that has not applied it yet. A job just submitted
			// is not "not found" for long.
			if client.IsNotFound(err) && (seen != nil || time.Since(start) > 5*time.Second) {
				return nil, err
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		index, seen = idx, job
		ll.show(statusLine(job), true)
		unfit := stopUnfit && job.Status == api.JobPending && job.CannotFit
		if job.Terminal() || unfit {
			if unfit {
				return job, errCannotFit
			}
			return job, nil
		}
	}
}

func statusLine(j *api.Job) string {
	counts := map[string]int{}
	for _, a := range j.Allocations {
		counts[a.Status]++
	}
	var parts []string
	for _, s := range []string{api.AllocPending, api.AllocRunning, api.AllocSucceeded, api.AllocFailed, api.AllocLost, api.AllocCancelled, api.AllocPreempted, api.AllocDrained, api.AllocStopped} {
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
			job, err := resolveJob(cmd.Context(), c, args[0])
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
		Use:   "cancel ID...",
		Short: "Cancel jobs and stop their tasks (a job that already ended is left as it is)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("want one or more job IDs, got none")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			return cancelJobs(cmd, c, args, g.json())
		},
	}
}

// cancelResult is what `ark job cancel` did to one job.
type cancelResult struct {
	Ref    string `json:"ref"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status,omitempty"`
	Result string `json:"result"` // cancelled, already ended, or error
	Error  string `json:"error,omitempty"`
}

// cancelJobs cancels each job refs names, idempotently: a job that already
// ended is reported as such and is no failure, so scripts may cancel
// without checking first (as kubectl delete --ignore-not-found and scancel
// do). Any ref that fails makes the exit 1; a single ref returns its error
// as is (an ambiguous prefix stays exit 2).
func cancelJobs(cmd *cobra.Command, c *client.Client, refs []string, asJSON bool) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	var results []cancelResult
	failed := false
	for _, ref := range refs {
		r := cancelResult{Ref: ref}
		job, err := resolveJob(ctx, c, ref)
		if err == nil {
			r.ID = job.ID
			if !job.Terminal() {
				err = c.CancelJob(ctx, job.ID)
				var ae *client.APIError
				if errors.As(err, &ae) && ae.StatusCode == 409 {
					// It ended between the look-up and the cancel.
					if j, _, jerr := c.Job(ctx, job.ID, 0, 0); jerr == nil && j.Terminal() {
						job, err = j, nil
					}
				} else if err == nil {
					job = &api.Job{ID: job.ID, Status: api.JobCancelled}
					r.Result = "cancelled"
				}
			}
			r.Status = job.Status
		}
		switch {
		case err != nil:
			if len(refs) == 1 {
				return err
			}
			failed = true
			r.Result, r.Error = "error", err.Error()
			if !asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "error: %s: %v\n", ref, err)
			}
		case r.Result == "cancelled":
			if !asJSON {
				fmt.Fprintf(out, "cancelled %s\n", r.ID)
			}
		default:
			r.Result = "already ended"
			if !asJSON {
				fmt.Fprintf(out, "job %s already ended (%s)\n", r.ID, r.Status)
			}
		}
		results = append(results, r)
	}
	if asJSON {
		var err error
		if len(results) == 1 {
			err = printJSON(out, results[0])
		} else {
			err = printJSON(out, results)
		}
		if err != nil {
			return err
		}
	}
	if failed {
		return silentError{exitFailure}
	}
	return nil
}

// logsTarget resolves the job whose logs `ark job logs` prints and checks
// the rank: without --rank it says on stderr which rank is shown (a gang's
// other ranks are easy to miss), a rank the job lacks is a usage error
// naming the valid ones, and with follow a job yet to start is waited for,
// as kubectl logs -f waits for a container, rather than failing.
func logsTarget(cmd *cobra.Command, c *client.Client, ref string, rank int, follow bool) (*api.Job, error) {
	job, err := resolveJob(cmd.Context(), c, ref)
	if err != nil {
		return nil, err
	}
	n := job.Spec.Replicas
	if n > 0 && rank >= n {
		return nil, usagef("job %s has no rank %d; its ranks are 0-%d", job.ID, rank, n-1)
	}
	if !cmd.Flags().Changed("rank") && n > 1 {
		fmt.Fprintf(cmd.ErrOrStderr(), "rank %d of %d; --rank N for another\n", rank, n)
	}
	if !follow || started(job, rank) {
		return job, nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "waiting for job %s to start...\n", job.ID)
	var index uint64
	for !started(job, rank) {
		var idx uint64
		job, idx, err = c.Job(cmd.Context(), job.ID, index, 10*time.Second)
		if err != nil {
			if cmd.Context().Err() != nil {
				return nil, silentError{exitInterrupted}
			}
			return nil, fmt.Errorf("waiting for job %s: %w", ref, err)
		}
		index = idx
	}
	return job, nil
}

// started reports whether rank of job has an allocation past pending, or
// the job ended (its logs, if any, are as complete as they will be).
func started(job *api.Job, rank int) bool {
	if job.Terminal() {
		return true
	}
	for _, a := range job.Allocations {
		if a.Rank == rank && a.Status != api.AllocPending {
			return true
		}
	}
	return false
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
			job, err := logsTarget(cmd, c, args[0], rank, follow)
			if err != nil {
				return err
			}
			rc, err := c.JobLogs(cmd.Context(), job.ID, rank, stream, follow)
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
