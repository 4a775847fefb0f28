package train

import (
	"errors"
	"strings"
	"testing"

	"github.com/ark-sched/ark/storage/checkpoint"
)

// FuzzSplitJobURI checks the parser of a job's checkpoint location
// (ARK_CHECKPOINT_URI, STORE_URI/JOB, or a bare directory): whatever it
// accepts has a valid job name, rebuilds to a location that splits the same
// way, and a step under it (what a task reports: $ARK_CHECKPOINT_URI/STEP)
// splits back to this job and step, so OpenCheckpoint finds it.
func FuzzSplitJobURI(f *testing.F) {
	for _, s := range []string{
		"file:///data/ckpt/team/ft-1",
		"s3://bucket/prefix/team/ft-1?endpoint=http://minio:9000",
		"s3://bucket/ft-1/",
		"s3://ft-1",
		"file://ft-1",
		"relative/dir/job",
		"/abs/job",
		"s3://bucket/.hidden",
		"s3://bucket/a?b/c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		store, job, err := SplitJobURI(uri)
		if err != nil {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "checkpoint location") {
				t.Fatalf("SplitJobURI(%q): error %v does not wrap ErrConfig or say what it parsed", uri, err)
			}
			return
		}
		if !checkpoint.ValidName(job) || store == "" {
			t.Fatalf("SplitJobURI(%q) = %q, %q: invalid job or empty store", uri, store, job)
		}
		base, query, hasQuery := strings.Cut(store, "?")
		again := base + "/" + job
		if hasQuery {
			again += "?" + query
		}
		store2, job2, err := SplitJobURI(again)
		if err != nil || store2 != store || job2 != job {
			t.Fatalf("SplitJobURI(%q) = %q, %q; rebuilt %q splits to %q, %q, %v", uri, store, job, again, store2, job2, err)
		}
		step := checkpoint.JoinURI(store, checkpoint.Ref{Job: job, Step: 5})
		if _, ref, err := checkpoint.SplitURI(step); err != nil || ref != (checkpoint.Ref{Job: job, Step: 5}) {
			t.Fatalf("SplitJobURI(%q) = %q, %q; step 5 under it, %q, splits to %+v, %v", uri, store, job, step, ref, err)
		}
	})
}
