package ckptpath

import "testing"

func TestJobURI(t *testing.T) {
	for _, tt := range []struct{ store, want string }{
		{"file:///var/lib/ark/ckpt", "file:///var/lib/ark/ckpt/research/ft-1"},
		{"file:///var/lib/ark/ckpt/", "file:///var/lib/ark/ckpt/research/ft-1"},
		{"s3://bucket/prefix?region=eu-west-1", "s3://bucket/prefix/research/ft-1?region=eu-west-1"},
		{"s3://bucket", "s3://bucket/research/ft-1"},
	} {
		if got := JobURI(tt.store, "research", "ft-1"); got != tt.want {
			t.Errorf("JobURI(%q) = %q, want %q", tt.store, got, tt.want)
		}
	}
}

func TestStepDir(t *testing.T) {
	if got := StepDir(50); got != "000000000050" {
		t.Fatalf("StepDir(50) = %q", got)
	}
	for _, s := range []int64{0, 50, MaxStep} {
		if n, ok := ParseStep(StepDir(s)); !ok || n != s {
			t.Errorf("ParseStep(StepDir(%d)) = %d, %v", s, n, ok)
		}
	}
	for _, bad := range []string{"50", "-00000000050", "00000000005x", "0000000000500"} {
		if _, ok := ParseStep(bad); ok {
			t.Errorf("ParseStep(%q) accepted", bad)
		}
	}
}
