// Package kernelstest is the conformance suite for kernels.Device backends:
// Run checks every op of a Device against a plain float64 reference
// implementation (ref.go), on fresh random inputs (never zeros) with shapes
// that do not divide any backend's tile sizes, at float32 tolerances. The
// reference backward ops are themselves checked against central finite
// differences of the reference forward ops (ref_test.go), so a backend that
// matches them computes true gradients.
//
// Backends call it from their tests:
//
//	func TestConformance(t *testing.T) {
//		kernelstest.Run(t, func(t *testing.T) kernels.Device { return cpu.New(2) })
//	}
package kernelstest
