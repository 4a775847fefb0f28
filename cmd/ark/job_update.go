package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// `ark job update|promote|history|revert`: a job's spec changes as a new
// version; a running service rolls it out replica by replica
// (docs/services.md).

func newJobUpdateCmd(g *globals) *cobra.Command {
	var version int
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "update ID FILE",
		Short: "Give a job a new version of its spec; a running service rolls it out replica by replica",
		Long: `Give a pending job, or a running service (inference job), a new version of its spec.
A change that leaves what each replica runs alone (replicas, priority, update strategy)
applies in place; any other starts a rollout: update.maxParallel new replicas at a time,
each next to the old one it replaces, which stops once the new one has been healthy
update.minHealthyTime. --wait follows the rollout to its end.`,
		Args: exactArgs(2, "a job ID and a spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := readSpec(args[1])
			if err != nil {
				return err
			}
			if err := checkLocalFiles(g, job, func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }); err != nil {
				return err
			}
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			body, err := json.Marshal(job)
			if err != nil {
				return err
			}
			resp, err := c.UpdateJob(cmd.Context(), j.ID, body, version)
			if err != nil {
				return fmt.Errorf("update %s: %w", j.ID, err)
			}
			return reportUpdate(cmd, g, c, resp, wait, timeout)
		},
	}
	cmd.Flags().IntVar(&version, "check-version", -1, "refuse the update unless the job is at this version (another update came first)")
	rolloutWaitFlags(cmd, &wait, &timeout)
	return cmd
}

func newJobPromoteCmd(g *globals) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "promote ID",
		Short: "Let a service's rollout go on past its healthy canaries",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			resp, err := c.PromoteJob(cmd.Context(), j.ID)
			if err != nil {
				return fmt.Errorf("promote %s: %w", j.ID, err)
			}
			return reportUpdate(cmd, g, c, resp, wait, timeout)
		},
	}
	rolloutWaitFlags(cmd, &wait, &timeout)
	return cmd
}

func newJobHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history ID",
		Short: "List every version of a job's spec and how its rollout ended",
		Args:  exactArgs(1, "a job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			vs, err := c.JobVersions(cmd.Context(), j.ID)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			printHistory(cmd.OutOrStdout(), j, vs)
			return nil
		},
	}
}

func newJobRevertCmd(g *globals) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "revert ID VERSION",
		Short: "Update a job back to the spec of one of its versions (as a new version)",
		Args:  exactArgs(2, "a job ID and a version"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil || v < 0 {
				return usagef("version %q is not a version number (see `ark job history %s`)", args[1], args[0])
			}
			c, j, err := clientAndJob(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			vs, err := c.JobVersions(cmd.Context(), j.ID)
			if err != nil {
				return err
			}
			var target *api.JobVersion
			for _, x := range vs {
				if x.Version == v {
					target = x
				}
			}
			if target == nil {
				return usagef("job %s has no version %d (it is at version %d; see `ark job history %s`)", j.ID, v, j.Version, j.ID)
			}
			body, err := json.Marshal(target.Spec)
			if err != nil {
				return err
			}
			resp, err := c.UpdateJob(cmd.Context(), j.ID, body, j.Version)
			if err != nil {
				return fmt.Errorf("revert %s to version %d: %w", j.ID, v, err)
			}
			return reportUpdate(cmd, g, c, resp, wait, timeout)
		},
	}
	rolloutWaitFlags(cmd, &wait, &timeout)
	return cmd
}

// clientAndJob is the API client and the job ref names.
func clientAndJob(ctx context.Context, g *globals, ref string) (*client.Client, *api.Job, error) {
	c, err := g.client()
	if err != nil {
		return nil, nil, usageError{err}
	}
	j, err := resolveJob(ctx, c, ref)
	return c, j, err
}

// rolloutWaitFlags are --wait and --timeout of the commands that start or
// move a rollout.
func rolloutWaitFlags(cmd *cobra.Command, wait *bool, timeout *time.Duration) {
	cmd.Flags().BoolVar(wait, "wait", false, "follow the rollout until it ends (exit 1 when it fails)")
	cmd.Flags().DurationVar(timeout, "timeout", 0, "with --wait: give up after this long (the rollout goes on)")
}

// reportUpdate prints an update's answer and, with wait, follows the
// rollout to its end.
func reportUpdate(cmd *cobra.Command, g *globals, c *client.Client, resp *api.UpdateResponse, wait bool, timeout time.Duration) error {
	out := cmd.OutOrStdout()
	if !wait || !resp.Rollout {
		if g.json() {
			return printJSON(out, resp)
		}
		how := "applied in place"
		if resp.Rollout {
			how = "rolling out"
			if len(resp.NewPaths) > 0 {
				how += rollCause(resp.NewPaths, "the local path")
			}
		}
		fmt.Fprintf(out, "%s version %d: %s\n", resp.ID, resp.Version, how)
		return nil
	}
	ctx := cmd.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	d, err := waitRollout(ctx, c, resp.ID, resp.Version, cmd.ErrOrStderr(), !g.json())
	if err != nil {
		return err
	}
	if g.json() {
		if err := printJSON(out, d); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "%s version %d: rollout %s", resp.ID, d.Version, d.Status)
		if d.Message != "" {
			fmt.Fprintf(out, " (%s)", d.Message)
		}
		fmt.Fprintln(out)
	}
	if d.Status != api.DeploymentSuccessful {
		return silentError{exitFailure}
	}
	return nil
}

// waitRollout follows job id's rollout of version (or the revert that
// replaced it) until it ends, printing each new message when live.
func waitRollout(ctx context.Context, c *client.Client, id string, version int, w io.Writer, live bool) (*api.Deployment, error) {
	var index uint64
	last := ""
	for {
		j, idx, err := c.Job(ctx, id, index, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("waiting for the rollout of %s: %w", id, err)
		}
		index = idx
		d := j.Deployment
		if d == nil || d.Version < version {
			continue
		}
		if d.Version > version {
			// Superseded, or failed and reverted: say how it ended.
			return versionOutcome(ctx, c, j, version)
		}
		if msg := d.Status + ": " + d.Message; live && msg != last {
			fmt.Fprintf(w, "version %d %s\n", d.Version, msg)
			last = msg
		}
		if !d.Active() {
			return d, nil
		}
		if j.Terminal() {
			return nil, fmt.Errorf("job %s is %s: %s", id, j.Status, j.Reason)
		}
	}
}

// versionOutcome is how the rollout of a job's version ended, from its
// record (a newer rollout has replaced it on the job).
func versionOutcome(ctx context.Context, c *client.Client, j *api.Job, version int) (*api.Deployment, error) {
	vs, err := c.JobVersions(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if v.Version != version {
			continue
		}
		d := &api.Deployment{Version: version, Status: v.Status, Message: v.Message}
		if r := j.Deployment; r != nil && r.RevertOf == version {
			d.Message += fmt.Sprintf("; reverted to the stable spec as version %d (%s)", r.Version, r.Status)
		}
		return d, nil
	}
	return nil, fmt.Errorf("job %s has no version %d", j.ID, version)
}

// printHistory lists a job's versions, newest last.
func printHistory(w io.Writer, j *api.Job, vs []*api.JobVersion) {
	tw := newTable(w)
	fmt.Fprintln(tw, "VERSION\tSUBMITTED\tSTABLE\tROLLOUT\tCHANGE")
	var prev *api.JobVersion
	for _, v := range vs {
		mark := ""
		if v.Version == j.Version {
			mark = " (current)"
		}
		stable := "no"
		if v.Stable {
			stable = "yes"
		}
		status := v.Status
		if v.Message != "" {
			status += ": " + v.Message
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%s\n", v.Version, mark, v.SubmitTime.Local().Format(time.DateTime), stable, orDash(status), specChange(prev, v))
		prev = v
	}
	tw.Flush()
}

// specChange names the top-level fields of v's spec that differ from
// prev's.
func specChange(prev, v *api.JobVersion) string {
	if prev == nil {
		return "submitted"
	}
	if v.RevertTo != nil {
		return fmt.Sprintf("automatic revert to version %d", *v.RevertTo)
	}
	a, b := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	ra, _ := json.Marshal(prev.Spec)
	rb, _ := json.Marshal(v.Spec)
	_ = json.Unmarshal(ra, &a)
	_ = json.Unmarshal(rb, &b)
	var changed []string
	for _, k := range []string{"priority", "replicas", "resources", "topology", "task", "checkpoint", "restart", "maxRuntime", "update", "output", "queue"} {
		if string(a[k]) != string(b[k]) {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return "no change"
	}
	return fmt.Sprint(changed)
}
