package checkpoint

import (
	"strings"
	"testing"
)

// FuzzSplitURI checks the parser of checkpoint URIs (STORE/JOB/STEP, what a
// task reports and ark ckpt takes): whatever it accepts names a valid
// checkpoint, and JoinURI of the parts parses back to the same parts; what
// it refuses gets an error that quotes the URI.
func FuzzSplitURI(f *testing.F) {
	for _, s := range []string{
		"file:///data/ckpt/ft/50",
		"file:///ft/000000000007/",
		"s3://bucket/p/q/job-1/000000000100",
		"s3://bucket/job/3?endpoint=http://x:1&region=eu",
		"s3://bucket/job/3#frag",
		"s3://bucket/.bad/3",
		"s3://bucket/job/-3",
		"s3://bucket/job/1000000000000",
		"s3://u:p@bucket/a%2Fb/job/+4",
		"/local/job/3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		store, ref, err := SplitURI(uri)
		if err != nil {
			if !strings.Contains(err.Error(), "checkpoint URI") {
				t.Fatalf("SplitURI(%q): error %q does not say what it parsed", uri, err)
			}
			return
		}
		if err := ref.validate(); err != nil {
			t.Fatalf("SplitURI(%q) accepted an invalid ref %+v: %v", uri, ref, err)
		}
		if store == "" {
			t.Fatalf("SplitURI(%q) accepted an empty store", uri)
		}
		joined := JoinURI(store, ref)
		store2, ref2, err := SplitURI(joined)
		if err != nil || store2 != store || ref2 != ref {
			t.Fatalf("SplitURI(%q) = %q, %v; its JoinURI %q splits to %q, %v, %v", uri, store, ref, joined, store2, ref2, err)
		}
	})
}
