package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func printJob(w io.Writer, j *api.Job) {
	fmt.Fprintf(w, "ID         %s\n", j.ID)
	fmt.Fprintf(w, "Name       %s\n", j.Name)
	fmt.Fprintf(w, "Kind       %s (namespace %s, queue %s, priority %d)\n", j.Kind, j.Namespace, j.Queue, j.Priority)
	fmt.Fprintf(w, "Status     %s\n", j.Status)
	if j.RestartCount > 0 {
		fmt.Fprintf(w, "Restarts   %d (%d to move off draining nodes, %d preempted)\n", j.RestartCount, j.Migrations, j.Preemptions)
	}
	if j.LastPreemption != "" {
		fmt.Fprintf(w, "Preempted  %s\n", strings.TrimPrefix(j.LastPreemption, "preempted "))
	}
	if len(j.Preempting) > 0 {
		fmt.Fprintf(w, "Preempting %s\n", strings.Join(j.Preempting, ", "))
	}
	if j.Spec.MaxRuntime > 0 {
		fmt.Fprintf(w, "MaxRuntime %s\n", time.Duration(j.Spec.MaxRuntime))
	}
	if j.Reason != "" {
		fmt.Fprintf(w, "Reason     %s\n", j.Reason)
	}
	printPending(w, j)
	printService(w, j)
	r := j.Spec.Resources
	fmt.Fprintf(w, "Resources  %d replica(s) x %s%s, cpu %s, memory %s\n", j.Spec.Replicas, gpuAsk(r), gpuFilter(r), r.CPU, r.Memory)
	fmt.Fprintf(w, "Submitted  %s\n", j.SubmitTime.Local().Format(time.DateTime))
	if j.StartTime != nil && j.EndTime != nil {
		fmt.Fprintf(w, "Duration   %s\n", j.EndTime.Sub(*j.StartTime).Round(time.Millisecond))
	}
	printJobCheckpoints(w, j)
	defer printEvents(w, j, time.Now())
	if len(j.Allocations) == 0 {
		return
	}
	fmt.Fprintln(w, "\nAllocations")
	tw := newTable(w)
	fmt.Fprintln(tw, "RANK\tATTEMPT\tNODE\tGPUS\tSTATUS\tEXIT\tID\tMESSAGE")
	for _, a := range j.Allocations {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Rank, a.Attempt, a.Node, allocGPUs(a), a.Status, exitOf(a), a.ID, a.Message)
	}
	tw.Flush()
	for _, a := range j.Allocations {
		if a.StderrTail != "" {
			fmt.Fprintf(w, "\nrank %d (attempt %d) stderr, last lines:\n  %s\n", a.Rank, a.Attempt, strings.ReplaceAll(a.StderrTail, "\n", "\n  "))
		}
	}
	for _, a := range j.Allocations {
		if a.Terminal() || (a.Progress == "" && a.LastCheckpoint == nil) {
			continue
		}
		line := fmt.Sprintf("rank %d: %s", a.Rank, a.Progress)
		if c := a.LastCheckpoint; c != nil {
			line += fmt.Sprintf(" (checkpoint step %d, %s ago: %s)", c.Step, time.Since(c.Time).Round(time.Second), canonicalCkptURI(c.URI))
		}
		fmt.Fprintln(w, line)
	}
}

// gpuAsk renders what one replica asks of GPUs: "2 GPU(s)" or "500m of
// 1 GPU".
func gpuAsk(r spec.Resources) string {
	if r.Shared() {
		return fmt.Sprintf("%dm of 1 GPU", r.GPUMilli)
	}
	return fmt.Sprintf("%d GPU(s)", r.GPUs)
}

// allocGPUs renders an allocation's GPUs: "0,1", or "3 (500m)" for a
// share of GPU 3.
func allocGPUs(a *api.Allocation) string {
	if a.GPUMilli > 0 {
		return fmt.Sprintf("%s (%dm)", ints(a.GPUs), a.GPUMilli)
	}
	return ints(a.GPUs)
}

// gpuCount renders milli-GPU as GPUs: "2", "1.5".
func gpuCount(milli int64) string {
	return strconv.FormatFloat(float64(milli)/spec.MilliPerGPU, 'f', -1, 64)
}

func gpuFilter(r spec.Resources) string {
	var parts []string
	if r.GPUModel != "" {
		parts = append(parts, "model "+r.GPUModel)
	}
	switch {
	case r.GPUMemory != "" && r.Shared():
		parts = append(parts, string(r.GPUMemory)+" of GPU memory")
	case r.GPUMemory != "":
		parts = append(parts, ">= "+string(r.GPUMemory))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func exitOf(a *api.Allocation) string {
	switch {
	case a.Signal != "":
		return a.Signal
	case a.ExitCode != nil:
		return fmt.Sprint(*a.ExitCode)
	}
	return "-"
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func age(t time.Time) string { return ageOf(time.Since(t)) }

// ageOf renders how long ago something was: "45s", "12m", "3h", "2d".
func ageOf(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// printService shows a service's endpoint, version and rollout, and each
// serving replica's version and health.
func printService(w io.Writer, j *api.Job) {
	if !j.Service {
		return
	}
	fmt.Fprintf(w, "Endpoint   /v1/services/%s/ on any server\n", j.ID)
	if j.Version > 0 {
		fmt.Fprintf(w, "Version    %d (stable %d; ark job history %s)\n", j.Version, j.StableVersion, j.ID)
	}
	if d := j.Deployment; d != nil {
		line := fmt.Sprintf("Rollout    version %d %s", d.Version, d.Status)
		if d.Active() && !d.Promoted {
			line += " (canaries wait for ark job promote)"
		}
		if d.RevertOf > 0 {
			line += fmt.Sprintf(", reverting version %d", d.RevertOf)
		}
		if d.Message != "" {
			line += ": " + d.Message
		}
		fmt.Fprintln(w, line)
	}
	ready, serving := 0, 0
	for _, a := range j.Allocations {
		if a.Serving() {
			serving++
			if a.Ready {
				ready++
			}
		}
	}
	fmt.Fprintf(w, "Replicas   %d ready of %d serving (%d asked)\n", ready, serving, j.Spec.Replicas)
	for _, a := range j.Allocations {
		if !a.Serving() {
			continue
		}
		health := "not ready"
		if a.Ready {
			health = "ready"
		}
		fmt.Fprintf(w, "  replica %d  version %d  %s:%d  %s  %s\n", a.Rank, a.JobVersion, a.Node, a.Port, health, a.ID)
	}
}
