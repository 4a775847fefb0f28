package agent

import (
	"encoding/json"
	"sync"

	"github.com/ark-sched/ark/scheduler/api"
)

// Replica loads: a service replica's HTTP health check may answer JSON
// with its load ({"running": N, "waiting": M, "ttftP90Ms": X,
// "requests": R}, as the builtin server and `ark example http-service`
// do). The agent keeps the latest answer of each replica and sends them
// with its heartbeats, where the leader's autoscaler reads them.

// loadBook holds each replica's latest load; its zero value is ready.
type loadBook struct {
	mu    sync.Mutex
	loads map[string]api.ReplicaLoad
}

// parseLoad reads a health answer's load; ok is false when the answer
// carries none (plain text, or JSON without the fields).
func parseLoad(allocID string, body []byte) (api.ReplicaLoad, bool) {
	var v struct {
		Running   *int     `json:"running"`
		Waiting   *int     `json:"waiting"`
		TTFTP90Ms *float64 `json:"ttftP90Ms"`
		Requests  *int64   `json:"requests"`
	}
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &v) != nil || (v.Running == nil && v.Waiting == nil && v.TTFTP90Ms == nil) {
		return api.ReplicaLoad{}, false
	}
	l := api.ReplicaLoad{AllocID: allocID}
	if v.Running != nil {
		l.Running = max(*v.Running, 0)
	}
	if v.Waiting != nil {
		l.Waiting = max(*v.Waiting, 0)
	}
	if v.TTFTP90Ms != nil && *v.TTFTP90Ms >= 0 {
		l.TTFTP90Ms = *v.TTFTP90Ms
	}
	if v.Requests != nil {
		l.Requests = *v.Requests
	}
	return l, true
}

// parseHealthMetrics reads the task metrics a health answer carries
// ({"metrics": {...}}, as the builtin server answers); nil when it
// carries none or they do not pass api.TaskMetrics.Check.
func parseHealthMetrics(body []byte) *api.TaskMetrics {
	var v struct {
		Metrics *api.TaskMetrics `json:"metrics"`
	}
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &v) != nil || v.Metrics == nil || v.Metrics.Check() != nil {
		return nil
	}
	return v.Metrics
}

func (b *loadBook) put(l api.ReplicaLoad) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.loads == nil {
		b.loads = map[string]api.ReplicaLoad{}
	}
	b.loads[l.AllocID] = l
}

func (b *loadBook) drop(allocID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.loads, allocID)
}

// all returns every replica's latest load.
func (b *loadBook) all() []api.ReplicaLoad {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]api.ReplicaLoad, 0, len(b.loads))
	for _, l := range b.loads {
		out = append(out, l)
	}
	return out
}
