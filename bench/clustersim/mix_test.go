package clustersim

import (
	"testing"

	"github.com/ark-sched/ark/bench/placementsim"
	"github.com/ark-sched/ark/scheduler/spec"
)

func TestShapeOf(t *testing.T) {
	for _, c := range []struct {
		name  string
		pod   placementsim.Pod
		gang  int
		ok    bool
		want  Shape
		milli int64
	}{
		{"cpu only", placementsim.Pod{CPUMilli: 4000, MemoryMiB: 1024}, 0, false, Shape{}, 0},
		{"share", placementsim.Pod{NumGPU: 1, GPUMilli: 460, CPUMilli: 6000, MemoryMiB: 12288}, 0, true,
			Shape{Class: ClassShared, Replicas: 1, GPUs: 1, GPUMilli: 460, CPUMilli: 6000, MemoryMiB: 12288}, 460},
		{"one whole GPU", placementsim.Pod{NumGPU: 1, GPUMilli: 1000, CPUMilli: 12000, MemoryMiB: 16384}, 0, true,
			Shape{Class: ClassSingle, Replicas: 1, GPUs: 1, CPUMilli: 12000, MemoryMiB: 16384}, 1000},
		{"four GPUs", placementsim.Pod{NumGPU: 4, GPUMilli: 1000, CPUMilli: 32000, MemoryMiB: 65536}, 4, true,
			Shape{Class: ClassMulti, Replicas: 1, GPUs: 4, CPUMilli: 32000, MemoryMiB: 65536}, 4000},
		{"whole node alone", placementsim.Pod{NumGPU: 8, GPUMilli: 1000, CPUMilli: 64000, MemoryMiB: 262144}, 0, true,
			Shape{Class: ClassMulti, Replicas: 1, GPUs: 8, CPUMilli: 64000, MemoryMiB: 262144}, 8000},
		{"whole node as a 4-node gang", placementsim.Pod{NumGPU: 8, GPUMilli: 1000, CPUMilli: 64000, MemoryMiB: 262144}, 4, true,
			Shape{Class: ClassGang, Replicas: 4, GPUs: 8, CPUMilli: 64000, MemoryMiB: 262144}, 32000},
		{"no CPU or memory asked", placementsim.Pod{NumGPU: 1, GPUMilli: 1000}, 0, true,
			Shape{Class: ClassSingle, Replicas: 1, GPUs: 1, CPUMilli: 100, MemoryMiB: 64}, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ShapeOf(c.pod, c.gang)
			if ok != c.ok || got != c.want {
				t.Fatalf("ShapeOf = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
			if got.Milli() != c.milli {
				t.Errorf("Milli = %d, want %d", got.Milli(), c.milli)
			}
			if !ok {
				return
			}
			// What the stream submits is a spec the servers take, asking
			// for exactly the shape.
			js, err := spec.Parse(got.Spec("sim-1", "team-01"))
			if err != nil {
				t.Fatalf("spec of %+v: %v", got, err)
			}
			if js.Replicas != got.Replicas || js.Resources.GPUs != got.GPUs || js.Resources.GPUMilli != got.GPUMilli || js.Namespace != "team-01" {
				t.Errorf("spec %+v does not ask for %+v", js, got)
			}
		})
	}
}

func TestMixFromOpenb(t *testing.T) {
	pods, err := placementsim.LoadPods(placementsim.DataDir() + "/openb_pod_list_default.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMix(pods, 42)
	if err != nil {
		t.Fatal(err)
	}
	// The openb default list: 3,078 shares, 3,911 whole single GPUs, 75
	// tasks of 2-8 GPUs of which 44 take a whole node; every other one of
	// those becomes a gang. Five whole-node tasks ask more CPU and memory
	// than a simulated node has (120 cores, 625-720 GiB) and are left
	// out: four would have stayed whole, one would have been a gang.
	want := map[string]int{ClassShared: 3078, ClassSingle: 3911, ClassMulti: 75 - 22 - 4, ClassGang: 22 - 1}
	got := m.Classes()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d shapes, want %d (all %v)", k, got[k], v, got)
		}
	}
	// Seeded: the same seed draws the same stream.
	m2, _ := NewMix(pods, 42)
	for i := 0; i < 100; i++ {
		if a, b := m.Next(), m2.Next(); a != b {
			t.Fatalf("draw %d differs under one seed: %+v vs %+v", i, a, b)
		}
	}
	if _, err := NewMix([]placementsim.Pod{{CPUMilli: 1000}}, 1); err == nil {
		t.Error("a list without GPU tasks gave a mix")
	}
	if _, err := NewMix([]placementsim.Pod{{CPUMilli: 120000, MemoryMiB: 737280, NumGPU: 8, GPUMilli: 1000}}, 1); err == nil {
		t.Error("a list whose only GPU task fits no simulated node gave a mix")
	}
}
