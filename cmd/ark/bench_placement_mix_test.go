package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"slices"
	"testing"

	"github.com/ark-sched/ark/bench/placementsim"
)

// TestBenchPlacementMixSweep: --mix-sweep narrowed to one mix and seed
// prints the mix's row and summary as JSON, with the share it was asked
// for; bad sweep flags are usage errors.
func TestBenchPlacementMixSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a mixed openb sequence with three policies")
	}
	t.Parallel()
	for _, bad := range [][]string{
		{"--mix-sweep", "--mix-class", "cpu-only"},
		{"--mix-sweep", "--mix-pct", "150"},
		{"--mix-sweep", "--seeds", "x"},
		{"--mix-sweep", "--seeds", "50-42"},
		{"--mix-sweep", "--seeds", "1-1000"},
		{"--mix-sweep", "--seeds", "42-"},
		{"--mix-class", "sharing"},
		{"--mix-sweep", "--mix-class", "sharing", "--mix-pct", "33"},
		{"--over-time", "--over-time-seed", "1", "--over-time-copy-jitter", "-5"},
	} {
		out, err := exec.Command(arkBin, append([]string{"bench", "placement"}, bad...)...).CombinedOutput()
		if code := exitCodeOf(err); code != exitUsage {
			t.Errorf("%v: exit %d, want %d:\n%s", bad, code, exitUsage, out)
		}
	}
	out, err := exec.Command(arkBin, "bench", "placement", "--mix-sweep", "--mix-class", "gpu-model", "--mix-pct", "33", "--seeds", "42", "--json").Output()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	var rep struct {
		Mixes struct {
			Rows []struct {
				Class    string  `json:"class"`
				Pct      int     `json:"pct"`
				Share    float64 `json:"measured_share_pct"`
				Arrivals int     `json:"arrivals"`
				Ark      float64 `json:"ark"`
				FGD      float64 `json:"fgd"`
				Margin   float64 `json:"margin"`
			} `json:"rows"`
			Summary []struct {
				Verdict string `json:"verdict"`
			} `json:"summary"`
		} `json:"mixes"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	rows := rep.Mixes.Rows
	if len(rows) != 1 || len(rep.Mixes.Summary) != 1 {
		t.Fatalf("want one row and one summary:\n%s", out)
	}
	r := rows[0]
	if r.Class != "gpu-model" || r.Pct != 33 || r.Share < 32.9 || r.Share > 33.1 || r.Arrivals < 8000 {
		t.Errorf("row %+v: want gpu-model 33%%, share 33%%, a sequence past the list's 8,152 tasks", r)
	}
	if r.Ark <= 0 || r.FGD <= 0 || math.Abs(r.Margin-(r.FGD-r.Ark)) > 0.006 {
		t.Errorf("row %+v: want figures above 0 and margin = FGD - Ark", r)
	}
}

// TestMixFlagsSeeds: --seeds takes seeds and ranges of them, in order.
func TestMixFlagsSeeds(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []uint64
		bad  bool
	}{
		{in: "42,43,44", want: []uint64{42, 43, 44}},
		{in: "42-45", want: []uint64{42, 43, 44, 45}},
		{in: "7, 42-43", want: []uint64{7, 42, 43}},
		{in: "5-5", want: []uint64{5}},
		{in: "45-42", bad: true},
		{in: "0-100", bad: true},
		{in: "1-60,61-120", bad: true},
		{in: "-3", bad: true},
		{in: "a-b", bad: true},
	} {
		o := placementsim.Options{MixSweep: true}
		err := mixFlags(&o, "", "", c.in)
		if c.bad {
			if err == nil {
				t.Errorf("--seeds %q: no error, seeds %v", c.in, o.MixSeeds)
			}
			continue
		}
		if err != nil || !slices.Equal(o.MixSeeds, c.want) {
			t.Errorf("--seeds %q: %v %v, want %v", c.in, o.MixSeeds, err, c.want)
		}
	}
}
