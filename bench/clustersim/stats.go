package clustersim

import "sort"

// Percentile is the nearest-rank p-th percentile (0 < p <= 1) of v, which
// it sorts; 0 for no values.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(float64(len(v))*p+0.999999) - 1 // ceil(n·p) as a rank, 1-based
	return v[min(max(i, 0), len(v)-1)]
}
