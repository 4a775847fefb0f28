// The big restore builds and moves 107 MB three times: about 15 s in a
// plain build, several minutes under -race (race-instrumented servers
// decoding it), so -race runs it only with -tags slow (README, Tests).

//go:build !race || slow

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/testenv"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// writeBigSnapshot writes a valid state snapshot of n finished jobs, each
// carrying payload bytes of environment: a state of n*payload bytes built
// in memory in a second or two, where submitting it would take minutes.
func writeBigSnapshot(t *testing.T, file string, n, payload int) {
	t.Helper()
	fsm := state.NewFSM(zap.NewNop())
	idx := uint64(0)
	apply := func(typ state.MessageType, req any) {
		data, err := state.Encode(typ, req)
		if err != nil {
			t.Fatal(err)
		}
		idx++
		if err, ok := fsm.ApplyEntry(idx, data).(error); ok {
			t.Fatalf("build big state, entry %d: %v", idx, err)
		}
	}
	value := strings.Repeat("0123456789abcdef", payload/16)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("big-%05d", i)
		sp := spec.Job{Name: "big", Namespace: "default", Queue: "default", Kind: "batch", Priority: 50, Replicas: 1,
			Resources: spec.Resources{GPUs: 1},
			Task:      spec.Task{Driver: "exec", Exec: &spec.ExecTask{Command: []string{"true"}, Env: map[string]string{"PAYLOAD": value}}}}
		apply(state.RegisterJobType, state.RegisterJobRequest{Job: &api.Job{ID: id, Name: "big", Namespace: "default", Queue: "default", Kind: "batch", Priority: 50, Spec: sp}})
		apply(state.CancelJobType, state.CancelJobRequest{JobID: id, Reason: "kept for the snapshot test", Time: time.Now()})
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := state.WriteSnapshot(w, fsm.Store().Snapshot()); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestHASnapshotRestoreBigThroughFollower: a snapshot of over 100 MB sent
// to a follower (`ark operator snapshot restore --addr FOLLOWER`) is
// streamed to the leader and restored on every server; the snapshot,
// taken on no cluster, carries no server addresses, and followers still
// forward afterwards. Clients submit all along: what is acknowledged after
// the restore returned is kept, and every server ends with the same jobs.
func TestHASnapshotRestoreBigThroughFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	const jobs, payload = 1700, 64 << 10
	file := filepath.Join(t.TempDir(), "big.snap")
	built := time.Now()
	writeBigSnapshot(t, file, jobs, payload)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() <= 100<<20 {
		t.Fatalf("snapshot is %d bytes, want over 100 MB", st.Size())
	}
	t.Logf("built a %d MB snapshot of %d jobs in %s", st.Size()>>20, jobs, time.Since(built).Round(time.Millisecond))

	c := startThreeWithToken(t, "", "--job-gc-threshold", "0")
	before, err := c.client().SubmitJob(context.Background(), []byte(haSpec))
	if err != nil {
		t.Fatal(err)
	}
	l := c.waitLeader()
	follower := c.addrs[(l+1)%3]
	// Under load: clients go on submitting while the restore runs. What
	// they wrote before it applies is replaced with the rest of the state;
	// what is acknowledged after it returned must be kept.
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var afterRestore []string
	var restoredFlag atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.client()
			for ctx.Err() == nil {
				after := restoredFlag.Load()
				rctx, cancel := context.WithTimeout(ctx, testenv.Scale(10*time.Second))
				r, err := cl.SubmitJob(rctx, []byte(haSpec))
				cancel()
				if err == nil && after {
					mu.Lock()
					afterRestore = append(afterRestore, r.ID)
					mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	restored := time.Now()
	out, err := cli(t, follower, "operator", "snapshot", "restore", file)
	if err != nil || !strings.Contains(out, "restored") {
		stop()
		wg.Wait()
		t.Fatalf("restore through a follower: %v %q", err, out)
	}
	restoredFlag.Store(true)
	t.Logf("restore through the follower took %s", time.Since(restored).Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "writes acknowledged after the restore", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(afterRestore) >= 5
	})
	stop()
	wg.Wait()
	for i, a := range c.addrs {
		one, _ := client.New(a)
		waitUntil(t, 60*time.Second, fmt.Sprintf("the restored state on s%d", i+1), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Scale(5*time.Second))
			defer cancel()
			last, _, err := one.Job(ctx, fmt.Sprintf("big-%05d", jobs-1), 0, 0)
			if err != nil || len(last.Spec.Task.Exec.Env["PAYLOAD"]) != len(strings.Repeat("0123456789abcdef", payload/16)) {
				return false
			}
			_, _, err = one.Job(ctx, before.ID, 0, 0)
			var ae *client.APIError
			return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
		})
	}
	// Every server has every write acknowledged after the restore, and the
	// same pending jobs (the big ones are cancelled): one state, not three.
	var sets []string
	for i, a := range c.addrs {
		one, _ := client.New(a)
		waitUntil(t, 30*time.Second, fmt.Sprintf("the writes after the restore on s%d", i+1), func() bool {
			jobs, err := one.Jobs(context.Background(), api.JobPending)
			if err != nil {
				return false
			}
			have := map[string]bool{}
			var ids []string
			for _, j := range jobs {
				have[j.ID] = true
				ids = append(ids, j.ID)
			}
			for _, id := range afterRestore {
				if !have[id] {
					return false
				}
			}
			sort.Strings(ids)
			if len(sets) == i {
				sets = append(sets, "")
			}
			sets[i] = strings.Join(ids, ",")
			return i == 0 || sets[i] == sets[0]
		})
	}
	// Followers still know where the leader is.
	if out, err := cli(t, follower, "job", "submit", "../../examples/hello-gang.yaml"); err != nil || !strings.HasPrefix(out, "hello-gang-") {
		t.Fatalf("submit through the follower after the restore: %v %q", err, out)
	}
}
