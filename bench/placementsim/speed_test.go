package placementsim

import "testing"

func BenchmarkSpeed(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := Speed(10000, 20000, 2000, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.SinglePerSec, "single/s")
		b.ReportMetric(r.GangPerSec, "gang/s")
	}
}
