package cpu

import "testing"

// TestSplit checks how a block of rows is cut into micro-kernel panels:
// whole, fewest rows computed, and under mr rows unchanged (one padded
// panel).
func TestSplit(t *testing.T) {
	six := microKernel{mr: 6, nr: 16, edge: &microKernel{mr: 4, nr: 16}}
	for _, c := range []struct {
		mk             microKernel
		mb, big, small int
	}{
		{six, 1, 1, 0},  // concurrency 1: one padded 6-row panel
		{six, 5, 1, 0},  // under mr
		{six, 6, 1, 0},  // whole
		{six, 7, 1, 1},  // 6 + 4 (10 rows), not 12
		{six, 8, 0, 2},  // 4 + 4
		{six, 10, 1, 1}, // 6 + 4
		{six, 32, 4, 2}, // a decode step: 24 + 8, not 36
		{six, 33, 5, 1}, // 30 + 4
		{six, 35, 6, 0}, // 36: no fewer rows with edges
		{six, 96, 16, 0},
		{genericKernel, 5, 2, 0}, // no edge kernel
		{genericKernel, 32, 8, 0},
	} {
		big, small := c.mk.split(c.mb)
		if big != c.big || small != c.small {
			t.Errorf("split(%d) with mr %d: %d big, %d small; want %d, %d", c.mb, c.mk.mr, big, small, c.big, c.small)
		}
		rows := big * c.mk.mr
		if small > 0 {
			rows += small * c.mk.edge.mr
		}
		if rows < c.mb || rows > mcBlock+c.mk.mr {
			t.Errorf("split(%d): %d rows", c.mb, rows)
		}
	}
}
