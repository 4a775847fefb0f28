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

// BenchmarkApplyBatch256 compares the FSM's cost of the two entries a
// waiting submission makes, at 256 per entry as the leader groups them
// under load, with 5,000 jobs in the store: registering the jobs, and
// writing each one's pending reason, into the job (copied and re-inserted
// under every index: ApplyPlan, as before kept reasons) or kept beside it
// (PendingReasons).
func BenchmarkApplyBatch256(b *testing.B) {
	const batch = 256
	// Registrations as the leader writes them now (binary) and before
	// (JSON), each job with a submit token as the API gives it.
	for _, enc := range []struct {
		name   string
		encode func(reqs []RegisterJobRequest) ([]byte, error)
	}{
		{"register", func(reqs []RegisterJobRequest) ([]byte, error) {
			var items [][]byte
			for i := range reqs {
				it, err := EncodeRegisterJobItem(&reqs[i])
				if err != nil {
					return nil, err
				}
				items = append(items, it)
			}
			return EncodeRegisterJobsBinary(items)
		}},
		{"register-json", func(reqs []RegisterJobRequest) ([]byte, error) {
			return Encode(RegisterJobsType, RegisterJobsRequest{Requests: reqs})
		}},
	} {
		b.Run(enc.name, func(b *testing.B) {
			f, index := fsmWithJobs(b, 5000)
			entries := make([][]byte, b.N)
			for i := range entries {
				var reqs []RegisterJobRequest
				for k := 0; k < batch; k++ {
					j := testJob(fmt.Sprintf("b%07d-%03d", i, k), 1, 1)
					j.SubmitToken = fmt.Sprintf("default/%07d-%03d-0123456789abcdef", i, k)
					reqs = append(reqs, RegisterJobRequest{Job: j})
				}
				data, err := enc.encode(reqs)
				if err != nil {
					b.Fatal(err)
				}
				entries[i] = data
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				index++
				if err, isErr := f.ApplyEntry(index, entries[i]).(error); isErr {
					b.Fatal(err)
				}
			}
		})
	}
	for _, via := range []struct {
		name string
		typ  MessageType
		req  func(prs []PendingReason) any
	}{
		{"reasons-in-job", ApplyPlanType, func(prs []PendingReason) any { return ApplyPlanRequest{Plan: Plan{Pending: prs}} }},
		{"reasons-kept", PendingReasonsType, func(prs []PendingReason) any { return PendingReasonsRequest{Reasons: prs} }},
	} {
		b.Run(via.name, func(b *testing.B) {
			f, index := fsmWithJobs(b, 5000)
			// Two texts in turn, so that every entry changes every reason.
			entries := make([][]byte, 2)
			for t := range entries {
				var prs []PendingReason
				for k := 0; k < batch; k++ {
					prs = append(prs, PendingReason{JobID: fmt.Sprintf("j%05d", k), Reason: fmt.Sprintf("no ready node (%d)", t)})
				}
				data, err := Encode(via.typ, via.req(prs))
				if err != nil {
					b.Fatal(err)
				}
				entries[t] = data
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				index++
				if err, isErr := f.ApplyEntry(index, entries[i%2]).(error); isErr {
					b.Fatal(err)
				}
			}
		})
	}
}
