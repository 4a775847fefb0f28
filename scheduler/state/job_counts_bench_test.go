package state

import (
	"fmt"
	"testing"

	"go.uber.org/zap"
)

// fsmWithJobs is an FSM holding n pending jobs of namespace default, and
// the index of its last entry.
func fsmWithJobs(b *testing.B, n int) (*FSM, uint64) {
	f := NewFSM(zap.NewNop())
	for i := 0; i < n; i++ {
		data, err := Encode(RegisterJobType, RegisterJobRequest{Job: testJob(fmt.Sprintf("j%05d", i), 1, 1)})
		if err != nil {
			b.Fatal(err)
		}
		if err, isErr := f.ApplyEntry(uint64(i+1), data).(error); isErr {
			b.Fatal(err)
		}
	}
	return f, uint64(n)
}

// BenchmarkCountUnfinished is a submission's limit check in a namespace
// holding 5,000 unfinished jobs (the default limit).
func BenchmarkCountUnfinished(b *testing.B) {
	f, _ := fsmWithJobs(b, 5000)
	snap := f.Store().Snapshot()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := snap.CountUnfinished("default", 5000); n != 5000 {
			b.Fatalf("counted %d", n)
		}
	}
}

// BenchmarkApplyRegisterJob is the FSM's cost of one submission's entry,
// decoding included, with 5,000 jobs already in the store.
func BenchmarkApplyRegisterJob(b *testing.B) {
	f, index := fsmWithJobs(b, 5000)
	entries := make([][]byte, b.N)
	for i := range entries {
		data, err := Encode(RegisterJobType, RegisterJobRequest{Job: testJob(fmt.Sprintf("b%07d", i), 1, 1)})
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = data
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		index++
		if err, isErr := f.ApplyEntry(index, entries[i]).(error); isErr {
			b.Fatal(err)
		}
	}
}

// BenchmarkNamespaceUsage is a submission's ACL limit check in a namespace
// holding 5,000 unfinished jobs.
func BenchmarkNamespaceUsage(b *testing.B) {
	f, _ := fsmWithJobs(b, 5000)
	snap := f.Store().Snapshot()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if u := snap.NamespaceUsage("default"); u.Pending != 5000 {
			b.Fatalf("usage %+v", u)
		}
	}
}
