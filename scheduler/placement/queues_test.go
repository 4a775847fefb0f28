package placement

import (
	"reflect"
	"testing"
)

func TestDominantShare(t *testing.T) {
	capacity := Demand{GPUMilli: 100000, CPUMilli: 1000_000, Memory: 1000}
	if s := DominantShare(Demand{GPUMilli: 10000, CPUMilli: 300_000, Memory: 50}, capacity, 1); s != 0.3 {
		t.Errorf("share = %v, want 0.3 (CPU dominates)", s)
	}
	if s := DominantShare(Demand{GPUMilli: 10000}, capacity, 2); s != 0.05 {
		t.Errorf("weighted share = %v, want 0.05", s)
	}
}

func TestFairOrder(t *testing.T) {
	capacity := Demand{GPUMilli: 16000, CPUMilli: 160_000, Memory: 1 << 40}
	jobs := []PendingJob{
		{ID: "a1", Queue: "a", Priority: 50, Order: 1, Demand: Demand{GPUMilli: 4000}},
		{ID: "a2", Queue: "a", Priority: 50, Order: 2, Demand: Demand{GPUMilli: 4000}},
		{ID: "a3", Queue: "a", Priority: 90, Order: 3, Demand: Demand{GPUMilli: 4000}},
		{ID: "b1", Queue: "b", Priority: 50, Order: 4, Demand: Demand{GPUMilli: 4000}},
	}
	// Queue a already holds 4 GPUs: b's job goes first, then a's by
	// priority, with b's share counted as it goes.
	got := FairOrder(jobs, map[string]Queue{"a": {Name: "a"}, "b": {Name: "b"}}, map[string]Demand{"a": {GPUMilli: 4000}}, capacity)
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	if want := []string{"b1", "a3", "a1", "a2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
	// A weight of 3 lets queue a run three jobs per one of b's.
	jobs = append(jobs, PendingJob{ID: "b2", Queue: "b", Priority: 50, Order: 5, Demand: Demand{GPUMilli: 4000}})
	got = FairOrder(jobs, map[string]Queue{"a": {Name: "a", Weight: 3}, "b": {Name: "b"}}, nil, capacity)
	ids = ids[:0]
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	if want := []string{"a3", "b1", "a1", "a2", "b2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("weighted order %v, want %v", ids, want)
	}
}

func TestAdmit(t *testing.T) {
	q := Queue{Name: "research", QuotaGPUs: 64}
	tests := []struct {
		name              string
		q                 Queue
		used, milli, idle int64
		want              Admission
	}{
		{"under quota", q, 32000, 8000, 0, Admission{Admit: true}},
		{"exactly at quota", q, 56000, 8000, 0, Admission{Admit: true}},
		{"over quota, no borrowing", q, 64000, 8000, 100000, Admission{Reason: "queue research at quota 64/64 GPUs"}},
		{"borrows idle GPUs", Queue{Name: "research", QuotaGPUs: 64, Borrow: true}, 64000, 8000, 16000, Admission{Admit: true, Borrowing: true}},
		{"nothing idle to borrow", Queue{Name: "research", QuotaGPUs: 64, Borrow: true}, 64000, 8000, 4000, Admission{Reason: "queue research at quota 64/64 GPUs"}},
		{"no quota", Queue{Name: "x"}, 1000000, 8000, 0, Admission{Admit: true}},
		{"a share fits the last half GPU", Queue{Name: "s", QuotaGPUs: 2}, 1500, 500, 0, Admission{Admit: true}},
		{"a share past the quota", Queue{Name: "s", QuotaGPUs: 2}, 1750, 500, 0, Admission{Reason: "queue s at quota 1.75/2 GPUs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Admit(tt.q, tt.used, tt.milli, tt.idle); got != tt.want {
				t.Errorf("Admit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChooseVictims(t *testing.T) {
	full := func() []*NodeState {
		return []*NodeState{ns("H100", 64000, 1000, 0, 0, 0, 0), ns("H100", 64000, 1000, 0, 0, 0, 0)}
	}
	two := Task{GPUs: 2, GPUMilli: 1000}
	tests := []struct {
		name    string
		nodes   []*NodeState
		running []Running
		prio    int
		want    Victims
		ok      bool
	}{
		{
			name:  "least work lost wins: the recently checkpointed job goes",
			nodes: full(),
			running: []Running{
				{Gang: "old", Node: 0, GPUs: []int{0, 1, 2, 3}, Priority: 10, LostSeconds: 3600},
				{Gang: "fresh", Node: 1, GPUs: []int{0, 1, 2, 3}, Priority: 10, LostSeconds: 60},
			},
			prio: 50, want: Victims{Node: 1, Gangs: []string{"fresh"}, LostGPUs: 240, MaxPrio: 10}, ok: true,
		},
		{
			name:  "a gang's replicas elsewhere count: evicting it loses all of them",
			nodes: full(),
			running: []Running{
				{Gang: "g", Node: 0, GPUs: []int{0, 1, 2, 3}, Priority: 10, LostSeconds: 100},
				{Gang: "g", Node: 1, GPUs: []int{0, 1}, Priority: 10, LostSeconds: 100},
				{Gang: "solo", Node: 1, GPUs: []int{2, 3}, Priority: 10, LostSeconds: 500},
			},
			prio: 50, want: Victims{Node: 0, Gangs: []string{"g"}, LostGPUs: 600, MaxPrio: 10}, ok: true, // g, not solo (1000 GPU-s); node 0 on the tie
		},
		{
			name:  "equal loss: the lower priority goes",
			nodes: full(),
			running: []Running{
				{Gang: "p30", Node: 0, GPUs: []int{0, 1, 2, 3}, Priority: 30, LostSeconds: 10},
				{Gang: "p20", Node: 1, GPUs: []int{0, 1, 2, 3}, Priority: 20, LostSeconds: 10},
			},
			prio: 50, want: Victims{Node: 1, Gangs: []string{"p20"}, LostGPUs: 40, MaxPrio: 20}, ok: true,
		},
		{
			name:  "never evicts equal or higher priority",
			nodes: full(),
			running: []Running{
				{Gang: "a", Node: 0, GPUs: []int{0, 1, 2, 3}, Priority: 50},
				{Gang: "b", Node: 1, GPUs: []int{0, 1, 2, 3}, Priority: 90},
			},
			prio: 50, ok: false,
		},
		{
			name:  "borrowed GPUs are reclaimable by any priority",
			nodes: full(),
			running: []Running{
				{Gang: "a", Node: 0, GPUs: []int{0, 1, 2, 3}, Priority: 90, Borrowed: true, LostSeconds: 5},
				{Gang: "b", Node: 1, GPUs: []int{0, 1, 2, 3}, Priority: 90},
			},
			prio: 10, want: Victims{Node: 0, Gangs: []string{"a"}, LostGPUs: 20, MaxPrio: 90}, ok: true,
		},
		{
			name:  "fits without eviction",
			nodes: []*NodeState{ns("H100", 64000, 1000, 1000, 1000)},
			prio:  50, want: Victims{Node: 0}, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ChooseVictims(tt.nodes, tt.running, two, tt.prio)
			if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("ChooseVictims = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
