package inventory

import (
	"testing"
	"time"
)

// TestNVMLSamplerMock reads go-nvml's mock DGX H200 through the NVML
// sampler: plausible figures on every GPU, and XID events counted on the
// GPU that raised them, once each.
func TestNVMLSamplerMock(t *testing.T) {
	m, err := MockMachine("dgxh200")
	if err != nil {
		t.Fatal(err)
	}
	gpus, err := DiscoverNVML(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewNVMLSampler(m, gpus)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.InjectXID(3, 79)
	m.InjectXID(3, 48)
	for round := range 2 {
		samples, err := s.Sample()
		if err != nil {
			t.Fatal(err)
		}
		if len(samples) != 8 {
			t.Fatalf("%d samples, want 8", len(samples))
		}
		for _, g := range samples {
			if g.Utilization < 0.1 || g.Utilization > 1 || g.MemoryUsedBytes <= 0 || g.MemoryFreeBytes <= 0 ||
				g.MemoryUsedBytes+g.MemoryFreeBytes != gpus[g.Index].MemoryBytes || g.PowerWatts < 100 || g.PowerWatts > 700 ||
				g.TemperatureCelsius < 30 || g.TemperatureCelsius > 80 {
				t.Errorf("GPU %d: implausible %+v", g.Index, g)
			}
			wantXIDs, wantLast := uint64(0), uint64(0)
			if g.Index == 3 {
				wantXIDs, wantLast = 2, 48
			}
			if g.XIDErrors != wantXIDs || g.LastXID != wantLast {
				t.Errorf("round %d GPU %d: %d XIDs (last %d), want %d (last %d)", round, g.Index, g.XIDErrors, g.LastXID, wantXIDs, wantLast)
			}
		}
	}
}

// TestFakeSamplerFollowsLoad: an idle fake GPU reads idle, a whole task
// reads busy, a quarter share in between; memory always adds up.
func TestFakeSamplerFollowsLoad(t *testing.T) {
	gpus, err := ParseFake("3xH100:80Gi", "n")
	if err != nil {
		t.Fatal(err)
	}
	load := []float64{0, 1, 0.25}
	s := NewFakeSampler(gpus, func(i int) float64 { return load[i] })
	for _, at := range []time.Time{time.Unix(0, 0), time.Unix(1000, 0), time.Unix(5000, 0)} {
		s.now = func() time.Time { return at }
		samples, _ := s.Sample()
		idle, busy, share := samples[0], samples[1], samples[2]
		if idle.Utilization > 0.05 || busy.Utilization < 0.9 || share.Utilization < 0.2 || share.Utilization > 0.3 {
			t.Errorf("at %v utilisation idle %.2f busy %.2f share %.2f", at, idle.Utilization, busy.Utilization, share.Utilization)
		}
		for _, g := range samples {
			if g.MemoryUsedBytes+g.MemoryFreeBytes != 80<<30 || g.PowerWatts <= 0 || g.PowerWatts > 700 {
				t.Errorf("GPU %d: %+v", g.Index, g)
			}
		}
		if !(idle.PowerWatts < share.PowerWatts && share.PowerWatts < busy.PowerWatts) || !(idle.TemperatureCelsius < busy.TemperatureCelsius) {
			t.Errorf("power/temperature do not follow load: %+v", samples)
		}
	}
}
