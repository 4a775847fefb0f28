package server

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/ark-sched/ark/scheduler/placement"
)

// Queues are read from a file given to every server (--queues-file):
//
//	- {name: research, quotaGPUs: 64, weight: 2, borrow: true}
//	- {name: prod, quotaGPUs: 128, weight: 1}
//
// A job names its queue in spec.queue; a queue the file does not list has
// weight 1 and no quota. Each pass, pending jobs are ordered by dominant
// resource fairness across queues (weights applied; priority then age
// within a queue), and a job that would take its queue past its GPU quota
// waits, unless the queue may borrow GPUs that no other queue's quota
// needs.

// QueueConfig is one queue in the queues file.
type QueueConfig struct {
	Name      string  `json:"name"`
	QuotaGPUs int     `json:"quotaGPUs,omitempty"`
	Weight    float64 `json:"weight,omitempty"`
	Borrow    bool    `json:"borrow,omitempty"`
}

// LoadQueues reads a queues file.
func LoadQueues(path string) (map[string]placement.Queue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("queues file: %w", err)
	}
	var list []QueueConfig
	if err := yaml.UnmarshalStrict(data, &list); err != nil {
		return nil, fmt.Errorf("queues file %s: %w", path, err)
	}
	out := map[string]placement.Queue{}
	for i, q := range list {
		switch {
		case q.Name == "":
			return nil, fmt.Errorf("queues file %s: queue %d has no name", path, i)
		case q.QuotaGPUs < 0 || q.Weight < 0:
			return nil, fmt.Errorf("queues file %s: queue %s: quotaGPUs and weight must not be negative", path, q.Name)
		case out[q.Name].Name != "":
			return nil, fmt.Errorf("queues file %s: queue %s is listed twice", path, q.Name)
		}
		if q.Weight == 0 {
			q.Weight = 1
		}
		out[q.Name] = placement.Queue{Name: q.Name, QuotaGPUs: q.QuotaGPUs, Weight: q.Weight, Borrow: q.Borrow}
	}
	return out, nil
}
