package testenv

import (
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
	}{
		{"", 10 * time.Second},
		{"1", 10 * time.Second},
		{"3", 30 * time.Second},
		{"0.5", 5 * time.Second},
		{"0", 10 * time.Second},
		{"-2", 10 * time.Second},
		{"fast", 10 * time.Second},
		{"NaN", 10 * time.Second},
		{"Inf", 10 * time.Second},
	} {
		t.Setenv(ScaleEnv, tc.env)
		if got := Scale(10 * time.Second); got != tc.want {
			t.Errorf("%s=%q: Scale(10s) = %v, want %v", ScaleEnv, tc.env, got, tc.want)
		}
	}
}
