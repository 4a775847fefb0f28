package clustersim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ark-sched/ark/bench/raftbench"
)

// leaderChangesMetric counts, on each server, the times it saw the
// cluster's leader change (to another server or to none).
const leaderChangesMetric = "ark_raft_leader_changes_total"

// leaderChanges is the most leader changes any server that ran throughout
// saw (the killed one's count restarted with it); 0 when none answered.
func leaderChanges(ctx context.Context, c *raftbench.Cluster, killed string) int {
	most := 0
	for _, s := range c.Servers() {
		if s.Name() == killed {
			continue
		}
		n, err := readCounter(ctx, "http://"+s.HTTP()+"/metrics", leaderChangesMetric)
		if err == nil && n > most {
			most = n
		}
	}
	return most
}

// unforcedElections is how many elections the servers held that the
// bench's kill did not cause: the first election is one change, and every
// later one two (the leader lost, then the next one), the kill's among
// them.
func unforcedElections(changes int, killed bool) int {
	rest := changes - 1
	if killed {
		rest -= 2
	}
	return max(0, (rest+1)/2)
}

// readCounter fetches a Prometheus text page and returns the value of the
// unlabelled counter name.
func readCounter(ctx context.Context, url, name string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return counterIn(resp.Body, name)
}

func counterIn(r io.Reader, name string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return int(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in the page", name)
}
