//go:build cgo

package cuda

import (
	"fmt"
	"strings"
)

// NVRTCVersion is the version of the libnvrtc this process loads, or an
// error wrapping kernels.ErrUnavailable that says why none loads. It needs
// no driver and no GPU.
func NVRTCVersion() (major, minor int, err error) {
	if err := loadNVRTC(); err != nil {
		return 0, 0, err
	}
	major, minor = nvrtcVersion()
	return major, minor, nil
}

// Compile compiles CUDA C++ source with NVRTC, the same way the Device
// compiles kernels.cu: for arch "sm_XY" the result is a cubin, for
// "compute_XY" it is PTX text ending in a NUL (what cuModuleLoadData takes).
// Log is NVRTC's log (warnings on success, errors on failure). It needs no
// driver and no GPU: tests and the cubin generator use it on machines
// without one.
func Compile(src, name, arch string) (image []byte, log string, err error) {
	if err := loadNVRTC(); err != nil {
		return nil, "", err
	}
	ptx := strings.HasPrefix(arch, "compute_")
	if !ptx && !strings.HasPrefix(arch, "sm_") {
		return nil, "", fmt.Errorf("cuda: compile %s: architecture %q is neither sm_XY nor compute_XY", name, arch)
	}
	img, log, err := nvrtcCompile(src, name, compileOptions(arch), ptx)
	if err != nil {
		ma, mi := nvrtcVersion()
		return nil, log, fmt.Errorf("cuda: compile %s for %s with NVRTC %d.%d: %w", name, arch, ma, mi, err)
	}
	return img, log, nil
}
