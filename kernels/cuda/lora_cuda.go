//go:build cgo

package cuda

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

var _ kernels.GatheredLoRA = (*Device)(nil)

// GatherLoRA adds each row's own adapter update (kernels.GatheredLoRA) in
// two launches on the default stream: lora_shrink writes u = scale·x·Aᵀ per
// row into a rows x rank scratch buffer the Device keeps, lora_expand adds
// u·Bt into y (why two: kernels.cu). The stacked factors are ordinary
// device buffers: a caller allocates them once (Slots x Rank x In and
// Slots x Rank x Out) and uploads an adapter into its slot with CopyIn on a
// Slice, as worker/train's decoder does, so loading one adapter never
// touches the others and needs no API of its own. Slots are not checked
// against Slots here (that would cost a copy to the host per call): the
// kernels skip a row whose slot is out of range, as they skip a negative
// one.
func (d *Device) GatherLoRA(y, x, a, bt, slots, scales kernels.Buffer, p kernels.LoRAArgs) error {
	if err := kernels.CheckGatherLoRA(y, x, a, bt, slots, scales, p); err != nil {
		return err
	}
	shrink, expand, err := loraLaunch(p)
	if err != nil {
		return err
	}
	ptr, err := d.ptrs("gather lora", y, x, a, bt, slots, scales)
	if err != nil {
		return err
	}
	u, err := d.loraScratch(p.Rows * p.Rank)
	if err != nil {
		return err
	}
	py, px, pa, pb, ps, pc := ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5]
	if err := d.run("lora_shrink", shrink.grid, shrink.block, argValues(loraShrinkArgs(u, px, pa, ps, pc, p))...); err != nil {
		return err
	}
	return d.run("lora_expand", expand.grid, expand.block, argValues(loraExpandArgs(py, u, pb, ps, p))...)
}

// loraScratch returns the device address of at least n floats for the
// shrink's output, grown on demand and kept (a decode step calls GatherLoRA
// per layer and target with the same shape; cuMemAlloc per call would cost
// more than the kernels). Growing waits for the issued work before it
// frees the old buffer, which a launch still queued may read (growth is
// rare: a larger batch than any before).
func (d *Device) loraScratch(n int) (uint64, error) {
	if d.loraU != nil && d.loraU.n >= n {
		return d.loraU.ptr, nil
	}
	if d.loraU != nil {
		if err := d.Sync(); err != nil {
			return 0, fmt.Errorf("gather lora: %w", err)
		}
		if err := d.Free(d.loraU); err != nil {
			return 0, fmt.Errorf("gather lora: %w", err)
		}
		d.loraU = nil
	}
	b, err := d.Alloc(kernels.Float32, max(n, 64*64)) // 64 rows of rank 64: a decode step's
	if err != nil {
		return 0, fmt.Errorf("gather lora scratch: %w", err)
	}
	d.loraU = b.(*buffer)
	return d.loraU.ptr, nil
}
