package clustersim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// WriteJSON prints the result as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown prints the result as Markdown tables.
func (r *Result) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# ark bench cluster\n\n| env | |\n| --- | --- |\n")
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %s |\n", k, r.Env[k])
	}
	fmt.Fprintf(w, "\n| figure | value |\n| --- | ---: |\n")
	rows := []struct {
		name string
		v    any
	}{
		{"nodes (8 fake GPUs each) / registered", fmt.Sprintf("%d / %d", r.Nodes, r.NodesRegistered)},
		{"registration of every node (s)", r.RegisterS},
		{"heartbeats/s", r.HeartbeatsPerSec},
		{"allocation long-polls answered/s", r.LongPollAnswersPerSec},
		{"heartbeat TTL told (s)", r.HeartbeatTTLS},
		{"submits/s", r.SubmitsPerSec},
		{"offered arrivals/s (0: closed loop) / arrival lag p99 (ms)", fmt.Sprintf("%.1f / %.0f", r.OfferedPerSec, r.ArrivalLagP99ms)},
		{"placements/s", r.PlacementsPerSec},
		{"submit to running p50 (ms, jobs submitted below 90% full; one still waiting counts to the end)", r.SubmitToRunningP50ms},
		{"submit to running p99 (ms)", r.SubmitToRunningP99ms},
		{fmt.Sprintf("submit to running p50 / p99, jobs submitted until %s before the leader's kill (ms)", killGuard), fmt.Sprintf("%.0f / %.0f", r.SteadyP50ms, r.SteadyP99ms)},
		{"submit to the allocation reaching its agent p50 / p99 (ms)", fmt.Sprintf("%.0f / %.0f", r.SubmitToSeenP50ms, r.SubmitToSeenP99ms)},
		{"leader CPU (cores)", r.LeaderCPUCores},
		{"leader RSS peak (MiB)", r.LeaderRSSMiB},
		{"follower RSS peak (MiB)", r.FollowerRSSMiB},
		{"Raft log bytes per job", r.RaftLogBytesPerJob},
		{"Raft entries per job", r.RaftEntriesPerJob},
		{"failover: leader SIGKILL to first submission taken (s)", r.FailoverS},
		{"nodes marked down by the failover (-1: not measured)", r.NodesMarkedDownByFailover},
		{"elections the kill did not cause (leader changes seen)", fmt.Sprintf("%d (%d)", r.UnforcedElections, r.LeaderChanges)},
		{"nodes marked down by the load (-1: not measured)", r.NodesMarkedDownByLoad},
		{"jobs submitted / failed submissions", fmt.Sprintf("%d / %d", r.Jobs, r.SubmitErrors)},
		{"allocations placed / tasks reported succeeded", fmt.Sprintf("%d / %d", r.Placements, r.TasksSucceeded)},
		{"jobs with room that never ran", fmt.Sprintf("%d of %d", r.RoomJobsNotRunning, r.RoomJobs)},
		{"jobs pending at the end", r.PendingJobs},
		{"cluster full / GPU fill at the stream's end", fmt.Sprintf("%v / %.1f%%", r.ClusterFull, 100*r.GPUFill)},
		{"stream (s)", r.StreamS},
		{"heartbeat errors / re-registrations", fmt.Sprintf("%d / %d", r.HeartbeatErrors, r.Reregistrations)},
		{"heartbeat errors by kind", kinds(r.HeartbeatErrorKinds)},
		{"404 \"node not registered\" to heartbeats / long-polls", fmt.Sprintf("%d / %d", r.NotFoundHeartbeats, r.NotFoundLongPolls)},
	}
	if len(r.ProfileErrors) > 0 {
		rows = append(rows, struct {
			name string
			v    any
		}{"profile files not written", strings.Join(r.ProfileErrors, "; ")})
	}
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %v |\n", row.name, row.v)
	}
	classes := make([]string, 0, len(r.Mix))
	for c := range r.Mix {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	fmt.Fprintf(w, "\nJob shapes (openb default list; 8-GPU tasks alternate between one node and 2- or 4-node gangs; tasks larger than a simulated node left out):")
	for _, c := range classes {
		fmt.Fprintf(w, " %s %d", c, r.Mix[c])
	}
	fmt.Fprintln(w)
	return nil
}

// kinds lists counts by kind, largest first.
func kinds(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
