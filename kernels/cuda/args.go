package cuda

// Launch argument slots: every kernel parameter takes 8 bytes; 4-byte
// parameters sit in the low half (little-endian). i32 builds no cgo value,
// so launch arguments can be assembled, and tested, without cgo (i64 and
// f32 are beside the launch, in device.go).
func i32(v int) uint64 { return uint64(uint32(int32(v))) }

// arg is one kernel parameter: its name in kernels.cu and its launch slot.
// Kernels whose arguments are built as named lists get their order checked
// against the source's parameter list by a test (the one mistake a launch
// can make that no CPU-side check of the kernel would see).
type arg struct {
	name string
	v    uint64
}
