package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/faultproxy"
	"github.com/ark-sched/ark/storage/s3"
	"github.com/ark-sched/ark/storage/storagetest"
)

// mildFaults are rare enough that minio-go's retries (and Get's resumes)
// hide them from the conformance suite.
var mildFaults = faultproxy.Faults{
	Error: 0.05, DropRequest: 0.03, DropResponse: 0.05,
	Stall: 0.05, StallFor: 50 * time.Millisecond,
}

func startProxy(t *testing.T, env storagetest.S3Env, f faultproxy.Faults) *faultproxy.Proxy {
	t.Helper()
	if strings.HasPrefix(env.Endpoint, "https://") {
		t.Skip("the fault proxy speaks plain http; the test server is https")
	}
	p, err := faultproxy.Start(env.Endpoint, f, uint64(time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t.Logf("fault proxy: %+v", p.Stats())
		p.Close()
	})
	return p
}

// TestConformanceThroughFaultProxy runs the conformance suite through a
// proxy that injects 500s, dropped requests, cut downloads and stalls.
func TestConformanceThroughFaultProxy(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	p := startProxy(t, env, mildFaults)
	penv := env
	penv.Endpoint = p.URL()
	storagetest.RunWithOptions(t, func(t *testing.T) storage.Store {
		return newTestStore(t, penv, s3.Options{MaxRetries: 10})
	}, storagetest.Options{LargeSize: 7 << 20})
}

// TestCheckpointsUnderFaults saves checkpoints through a proxy with heavy
// faults, including requests the server handled but whose answers were
// lost. Then, with the faults off, every checkpoint is either complete
// and verified or absent, every save that reported success is complete,
// and no multipart upload is left dangling.
func TestCheckpointsUnderFaults(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	p := startProxy(t, env, faultproxy.Faults{})
	penv := env
	penv.Endpoint = p.URL()
	// Few retries, so that some saves do fail.
	faulty := newTestStore(t, penv, s3.Options{MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2})
	direct, err := s3.New(env.Bucket, prefixOf(t, faulty), s3.Options{Endpoint: env.Endpoint, AccessKey: env.AccessKey, SecretKey: env.SecretKey})
	if err != nil {
		t.Fatal(err)
	}

	p.SetFaults(faultproxy.Faults{
		Error: 0.10, DropRequest: 0.08, DropAfter: 0.08, DropResponse: 0.1,
		Stall: 0.05, StallFor: 100 * time.Millisecond,
	})
	const steps = 12
	saved := map[int64]bool{}
	for step := int64(1); step <= steps; step++ {
		st := &checkpoint.State{Job: "faulty", Step: step, WorldSize: 2}
		for r := range 2 {
			size := 1 << 20
			if step%3 == 0 {
				size = 6 << 20 // multipart with two parts
			}
			st.Shards = append(st.Shards, checkpoint.Shard{Rank: r, Tensors: []checkpoint.Tensor{
				{Name: fmt.Sprintf("r%d", r), Data: storagetest.Payload(uint64(step*10)+uint64(r), size)},
			}})
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		_, err := checkpoint.Save(ctx, faulty, st, checkpoint.SaveOptions{Concurrency: 2})
		cancel()
		saved[step] = err == nil
		t.Logf("step %d: save err = %v", step, err)
	}
	p.SetFaults(faultproxy.Faults{})

	ctx := t.Context()
	var complete, absent int
	for step := int64(1); step <= steps; step++ {
		ref := checkpoint.Ref{Job: "faulty", Step: step}
		c, err := checkpoint.Open(ctx, direct, ref, nil)
		if errors.Is(err, checkpoint.ErrNotFound) {
			if saved[step] {
				t.Errorf("step %d: Save succeeded but the checkpoint is absent", step)
			}
			absent++
			continue
		}
		if err != nil {
			t.Errorf("step %d: %v", step, err)
			continue
		}
		if _, err := c.Verify(ctx, nil); err != nil {
			t.Errorf("step %d: checkpoint exists but does not verify: %v", step, err)
			continue
		}
		complete++
	}
	t.Logf("%d complete, %d absent (of %d; %d saves reported success)", complete, absent, steps, count(saved))
	if complete == 0 {
		t.Errorf("no checkpoint survived the faults; the test proves little")
	}
	// Failed puts abort their uploads. An upload whose initiation answer
	// was lost during a put that then succeeded is invisible to the
	// client: only the sweeper (run by checkpoint.Retain) removes it.
	left, err := direct.ListIncomplete(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orphaned multipart uploads before the sweep: %v", len(left), left)
	if err := direct.SweepIncomplete(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if left, err := direct.ListIncomplete(ctx, ""); err != nil || len(left) != 0 {
		t.Errorf("dangling multipart uploads after the sweep: %v, %v", left, err)
	}
}

func count(m map[int64]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// prefixOf recovers the unique prefix of a test store from its URI.
func prefixOf(t *testing.T, s *s3.Store) string {
	t.Helper()
	_, prefix, _, err := s3.ParseURI(s.URI(), s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return prefix
}

// TestGetResumesCutDownloads cuts half of all object downloads short: Get
// resumes each from where it stopped, and the bytes are intact.
func TestGetResumesCutDownloads(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	p := startProxy(t, env, faultproxy.Faults{})
	penv := env
	penv.Endpoint = p.URL()
	s := newTestStore(t, penv, s3.Options{})
	data := storagetest.Payload(42, 3<<20)
	if err := s.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	p.SetFaults(faultproxy.Faults{DropResponse: 0.5})
	// Six reads at least, and on until one was cut: at one chance in two
	// per response, six alone miss every cut about once in 64 runs.
	for i := 0; i < 6 || p.Stats().DropResponses == 0 && i < 40; i++ {
		off := int64(i%6) * 100_000
		rc, err := s.Get(t.Context(), "obj", off, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[off:]) {
			t.Fatalf("read %d: %d bytes, %v", i, len(got), err)
		}
	}
	if p.Stats().DropResponses == 0 {
		t.Errorf("no download was cut; the test proves nothing")
	}
}
