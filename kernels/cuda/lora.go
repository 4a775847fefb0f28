package cuda

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// Launch geometry of the gathered LoRA kernels (lora_shrink, lora_expand in
// kernels.cu). It lives apart from the cgo launch so that the Go port of the
// kernels' loops (lora_sim_test.go) runs on exactly these grids on machines
// without a GPU, or without cgo.
const (
	loraWarps  = 8   // LORA_WARPS: warps per shrink block, one rank index each
	loraExpand = 256 // LORA_EXPAND: threads per expand block, one output column each
	warpSize   = 32
	maxGridY   = 65535 // CUDA's limit on gridDim.y
)

// dims is one launch's grid and block.
type dims struct{ grid, block [3]uint32 }

// loraLaunch is the geometry of GatherLoRA's two launches: the shrink's
// grid is (Rows, ceil(Rank/loraWarps)) blocks of loraWarps warps, the
// expand's (Rows, ceil(Out/loraExpand)) blocks of loraExpand threads. Rows
// go in grid.x (up to 2³¹-1); a rank or width whose blocks would pass
// grid.y's 65,535 is an ErrArgument (far beyond any model: rank 524,280,
// width 16.7M).
func loraLaunch(p kernels.LoRAArgs) (shrink, expand dims, err error) {
	gk := (p.Rank + loraWarps - 1) / loraWarps
	gc := (p.Out + loraExpand - 1) / loraExpand
	if gk > maxGridY || gc > maxGridY || int64(p.Rows) > 1<<31-1 {
		return dims{}, dims{}, fmt.Errorf("gather lora: %d rows, rank %d, out %d exceed CUDA's grid: %w",
			p.Rows, p.Rank, p.Out, kernels.ErrArgument)
	}
	shrink = dims{grid: [3]uint32{uint32(p.Rows), uint32(gk), 1}, block: [3]uint32{loraWarps * warpSize, 1, 1}}
	expand = dims{grid: [3]uint32{uint32(p.Rows), uint32(gc), 1}, block: [3]uint32{loraExpand, 1, 1}}
	return shrink, expand, nil
}

// loraShrinkArgs and loraExpandArgs are the launch arguments of lora_shrink
// and lora_expand, named as in kernels.cu (TestLoRAArgsMatchSource).
func loraShrinkArgs(u, x, a, slots, scales uint64, p kernels.LoRAArgs) []arg {
	return []arg{{"u", u}, {"x", x}, {"a", a}, {"slots", slots}, {"scales", scales},
		{"in", i32(p.In)}, {"rank", i32(p.Rank)}, {"nslots", i32(p.Slots)}}
}

func loraExpandArgs(y, u, bt, slots uint64, p kernels.LoRAArgs) []arg {
	return []arg{{"y", y}, {"u", u}, {"bt", bt}, {"slots", slots},
		{"out", i32(p.Out)}, {"rank", i32(p.Rank)}, {"nslots", i32(p.Slots)}}
}
