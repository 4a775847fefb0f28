//go:build cgo

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// cubin returns kernels.cu compiled for sm_<major><minor>, from the cache
// when an earlier run compiled the same source with the same NVRTC.
func cubin(major, minor int) ([]byte, error) {
	nvMaj, nvMin := nvrtcVersion()
	arch := fmt.Sprintf("sm_%d%d", major, minor)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00nvrtc%d.%d", kernelSource, arch, nvMaj, nvMin)))
	var path string
	if dir, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(dir, "ark", "cuda", hex.EncodeToString(sum[:16])+".cubin")
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	img, log, err := nvrtcCompile(kernelSource, "ark_kernels.cu", []string{
		"--gpu-architecture=" + arch, "--std=c++14", "-default-device",
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: compile kernels for %s with NVRTC %d.%d: %w\n%s", arch, nvMaj, nvMin, err, log)
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
