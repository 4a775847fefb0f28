//go:build cgo

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// loadKernels loads kernels.cu's module for a device of compute capability
// major.minor: the embedded image that fits (driver only, no NVRTC), else
// one NVRTC compiles at run time. An embedded image the driver refuses
// (PTX newer than an old driver takes) also falls back to NVRTC. It
// returns the module and how its image was obtained, for Describe.
func loadKernels(ctx ctxHandle, major, minor int) (cHandle, string, error) {
	var embeddedErr error
	if img, arch, ok := embeddedImage(major, minor); ok {
		mod, err := moduleLoad(ctx, img)
		if err == nil {
			return mod, "embedded " + arch, nil
		}
		embeddedErr = fmt.Errorf("cuda: load embedded %s image: %w", arch, err)
	}
	img, err := cubin(major, minor)
	if err != nil {
		if embeddedErr != nil {
			return 0, "", fmt.Errorf("%w; NVRTC fallback: %w", embeddedErr, err)
		}
		archs, _ := EmbeddedArchs()
		return 0, "", fmt.Errorf("cuda: no embedded image for sm_%d%d (this binary carries %v) and no NVRTC to compile one: %w",
			major, minor, archs, err)
	}
	mod, err := moduleLoad(ctx, img)
	if err != nil {
		return 0, "", fmt.Errorf("cuda: load NVRTC-compiled sm_%d%d module: %w", major, minor, err)
	}
	nvMaj, nvMin, _ := NVRTCVersion()
	return mod, fmt.Sprintf("NVRTC %d.%d sm_%d%d", nvMaj, nvMin, major, minor), nil
}

// cubin returns kernels.cu compiled for sm_<major><minor>, from the cache
// when an earlier run compiled the same source with the same NVRTC.
func cubin(major, minor int) ([]byte, error) {
	nvMaj, nvMin, err := NVRTCVersion()
	if err != nil {
		return nil, err
	}
	arch := fmt.Sprintf("sm_%d%d", major, minor)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00nvrtc%d.%d", kernelSource, arch, nvMaj, nvMin)))
	var path string
	if dir, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(dir, "ark", "cuda", hex.EncodeToString(sum[:16])+".cubin")
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	img, log, err := Compile(kernelSource, kernelFile, arch)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	if path != "" { // best effort: a read-only cache only costs a recompile
		if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
			if f, err := os.CreateTemp(filepath.Dir(path), "cubin-*"); err == nil {
				_, werr := f.Write(img)
				if cerr := f.Close(); werr == nil && cerr == nil {
					_ = os.Rename(f.Name(), path)
				} else {
					_ = os.Remove(f.Name())
				}
			}
		}
	}
	return img, nil
}
