package clustersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/ark-sched/ark/bench/placementsim"
)

// Job classes of the stream.
const (
	ClassSingle = "single" // one whole GPU
	ClassShared = "shared" // a share of one GPU (gpuMilli)
	ClassMulti  = "multi"  // 2-8 GPUs of one node
	ClassGang   = "gang"   // several nodes, 8 GPUs each
)

// Shape is what one job asks for.
type Shape struct {
	Class    string
	Replicas int
	// GPUs per replica; GPUMilli is set (1..999) for a share of one GPU.
	GPUs      int
	GPUMilli  int
	CPUMilli  int64
	MemoryMiB int64
}

// Milli is the GPU capacity the job holds, in thousandths of a GPU.
func (s Shape) Milli() int64 {
	if s.GPUMilli > 0 {
		return int64(s.Replicas) * int64(s.GPUMilli)
	}
	return int64(s.Replicas) * int64(s.GPUs) * 1000
}

// ShapeOf maps one openb task to a job. The trace has no multi-node
// jobs, so a whole-node (8-GPU) task becomes a gang of gangNodes such
// nodes when gangNodes > 1. ok is false for a task without GPUs (the
// simulated nodes are GPU nodes, and CPU-only tasks say nothing about the
// GPU scheduler).
func ShapeOf(p placementsim.Pod, gangNodes int) (Shape, bool) {
	s := Shape{Replicas: 1, GPUs: p.NumGPU, CPUMilli: max(p.CPUMilli, 100), MemoryMiB: max(p.MemoryMiB, 64)}
	switch {
	case p.NumGPU <= 0:
		return Shape{}, false
	case p.NumGPU == 1 && p.GPUMilli > 0 && p.GPUMilli < 1000:
		s.Class, s.GPUMilli = ClassShared, int(p.GPUMilli)
	case p.NumGPU == 1:
		s.Class = ClassSingle
	case p.NumGPU >= GPUsPerNode && gangNodes > 1:
		s.Class, s.GPUs, s.Replicas = ClassGang, GPUsPerNode, gangNodes
	default:
		s.Class, s.GPUs = ClassMulti, min(p.NumGPU, GPUsPerNode)
	}
	return s, true
}

// Spec is the job spec the stream submits for s: an exec batch job (the
// simulated agents never run it).
func (s Shape) Spec(name, namespace string) []byte {
	res := map[string]any{
		"gpus": s.GPUs, "cpu": fmt.Sprintf("%dm", s.CPUMilli), "memory": fmt.Sprintf("%dMi", s.MemoryMiB),
	}
	if s.GPUMilli > 0 {
		res["gpuMilli"] = s.GPUMilli
	}
	b, err := json.Marshal(map[string]any{
		"name": name, "namespace": namespace, "kind": "batch", "replicas": s.Replicas,
		"resources": res,
		"task":      map[string]any{"driver": "exec", "exec": map[string]any{"command": []string{"true"}}},
	})
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// fitsNode reports whether one replica fits an idle simulated node. The
// trace's machines are larger than the simulated ones for a few tasks (5
// whole-node tasks of the default list ask 120 cores and 625-720 GiB): a
// job no node can ever take says nothing of the control plane's speed,
// and would wait out the run as a "room" job.
func (s Shape) fitsNode() bool {
	return s.CPUMilli <= nodeCPUMilli && s.MemoryMiB<<20 <= nodeMemory
}

// Mix draws job shapes from the openb trace's tasks, with replacement, in
// a seeded order.
type Mix struct {
	shapes []Shape
	rng    *rand.Rand
}

// NewMix builds the mix from a task list. Every other whole-node task
// becomes a gang, of 2 and 4 nodes in turn, so that the stream holds each
// class the issue names while keeping the trace's proportions otherwise.
// Tasks larger than a simulated node are left out (fitsNode).
func NewMix(pods []placementsim.Pod, seed uint64) (*Mix, error) {
	m := &Mix{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	whole := 0
	for _, p := range pods {
		gang := 0
		if p.NumGPU >= GPUsPerNode {
			if whole%2 == 0 {
				gang = 2 + 2*(whole/2%2) // 2, 4, 2, 4...
			}
			whole++
		}
		if s, ok := ShapeOf(p, gang); ok && s.fitsNode() {
			m.shapes = append(m.shapes, s)
		}
	}
	if len(m.shapes) == 0 {
		return nil, errors.New("the task list has no task with GPUs")
	}
	return m, nil
}

// Next is the next job's shape.
func (m *Mix) Next() Shape { return m.shapes[m.rng.IntN(len(m.shapes))] }

// Classes counts the mix's shapes by class.
func (m *Mix) Classes() map[string]int {
	out := map[string]int{}
	for _, s := range m.shapes {
		out[s.Class]++
	}
	return out
}
