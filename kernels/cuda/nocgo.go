//go:build !cgo

package cuda

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// Device is unavailable in binaries built without cgo.
type Device struct{ kernels.Device }

// New reports that CUDA needs cgo.
func New(ordinal int) (*Device, error) {
	return nil, fmt.Errorf("cuda: device %d: binary built without cgo: %w", ordinal, kernels.ErrUnavailable)
}

// Available reports that CUDA needs cgo.
func Available() error {
	return fmt.Errorf("cuda: binary built without cgo: %w", kernels.ErrUnavailable)
}

// DevicePtr needs cgo.
func (d *Device) DevicePtr(kernels.Buffer) (uintptr, error) {
	return 0, fmt.Errorf("cuda: binary built without cgo: %w", kernels.ErrUnavailable)
}

// MakeCurrent needs cgo.
func (d *Device) MakeCurrent() error {
	return fmt.Errorf("cuda: binary built without cgo: %w", kernels.ErrUnavailable)
}

// NVRTCVersion needs cgo.
func NVRTCVersion() (major, minor int, err error) {
	return 0, 0, fmt.Errorf("cuda: binary built without cgo: %w", kernels.ErrUnavailable)
}

// Compile needs cgo.
func Compile(src, name, arch string) (image []byte, log string, err error) {
	return nil, "", fmt.Errorf("cuda: compile %s: binary built without cgo: %w", name, kernels.ErrUnavailable)
}
