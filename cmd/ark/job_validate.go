package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
)

// validateResult is what `ark job validate -o json` prints: the defaulted
// spec, and the cluster's answer when one was asked.
type validateResult struct {
	Spec *spec.Job `json:"spec"`
	// Cluster is the leader's verdict; nil when no cluster was asked.
	Cluster *api.Validation `json:"cluster,omitempty"`
	// Offline says why no cluster was asked.
	Offline string `json:"offline,omitempty"`
}

func newJobValidateCmd(g *globals) *cobra.Command {
	var cluster, offline bool
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a job spec without submitting it (and whether the cluster can fit it, when one is reachable)",
		Long: `Check a job spec without submitting it.

The spec is checked here first. Then, when a server answers at --addr
(ARK_ADDR), the leader runs its placement pass on the cluster as it is, with
this job as the only pending one, and commits nothing: a job that no node
could take even on the idle cluster "cannot fit" (exit 1), with the reasons.
With no server reachable the check stays offline and says so; --cluster
makes a cluster's answer required, --offline skips asking.`,
		Args: exactArgs(1, "a spec file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cluster && offline {
				return usagef("--cluster and --offline exclude each other")
			}
			job, err := readSpec(args[0])
			if err != nil {
				return err
			}
			if err := checkLocalFiles(g, job, func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }); err != nil {
				return err
			}
			res := validateResult{Spec: job}
			if offline {
				res.Offline = "--offline"
			} else if res.Cluster, err = askCluster(cmd, g, job); err != nil {
				var ue *client.UnreachableError
				if cluster || !errors.As(err, &ue) {
					return fmt.Errorf("validate against the cluster: %w", err)
				}
				res.Cluster, res.Offline = nil, ue.Error()
			}
			if g.json() {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printValidation(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], res)
			}
			if res.Cluster != nil && res.Cluster.CannotFit {
				return silentError{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&cluster, "cluster", false, "require the cluster's answer: fail when no server is reachable (default: ask when one is)")
	cmd.Flags().BoolVar(&offline, "offline", false, "check the spec only; do not ask a server")
	return cmd
}

// askCluster asks the leader what it would do with job now.
func askCluster(cmd *cobra.Command, g *globals, job *spec.Job) (*api.Validation, error) {
	c, err := g.client()
	if err != nil {
		return nil, usageError{err}
	}
	body, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	return c.ValidateJob(cmd.Context(), body)
}

func printValidation(out, errw io.Writer, file string, res validateResult) {
	job := res.Spec
	fmt.Fprintf(out, "%s is valid: %s job %q, %d replica(s) x %s\n", file, job.Kind, job.Name, job.Replicas, gpuAsk(job.Resources))
	v := res.Cluster
	switch {
	case v == nil:
		fmt.Fprintf(errw, "not checked against a cluster (%s)\n", res.Offline)
	case v.CannotFit:
		fmt.Fprintf(out, "cannot fit: %s\n", v.Reason)
		printReasons(out, v.Reasons)
	case v.Fits && len(v.Preempts) > 0:
		fmt.Fprintf(out, "the cluster would place it now by preempting %s\n", strings.Join(v.Preempts, ", "))
	case v.Fits:
		fmt.Fprintln(out, "the cluster would place it now")
	default:
		fmt.Fprintf(out, "the cluster would queue it: %s\n", v.Reason)
		printReasons(out, v.Reasons)
	}
}

func printReasons(w io.Writer, rs []api.Reason) {
	if len(rs) < 2 {
		return // the reason line says it all
	}
	for _, r := range rs {
		fmt.Fprintf(w, "  - %s\n", r.Detail)
	}
}
