package cuda

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testArchs are the architectures every CUDA source must compile for: the
// A100 (sm_80) and H100/H200 (sm_90) generations Ark's clusters run.
var testArchs = []string{"sm_80", "sm_90"}

// requireNVRTC returns NVRTC's version, or skips where it is absent; under
// CI=true (.ci/run installs it) its absence fails the test instead, so the
// compile check cannot stop running unseen.
func requireNVRTC(t *testing.T) (int, int) {
	t.Helper()
	ma, mi, err := NVRTCVersion()
	if err == nil {
		return ma, mi
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but NVRTC is not loadable (.ci/run installs libnvrtc11.2 and libnvrtc-builtins11.8 from Debian's non-free): %v", err)
	}
	t.Skipf("no NVRTC here, CUDA sources not compiled: %v", err)
	return 0, 0
}

// cudaSources lists every .cu file in the module, relative to its root.
func cudaSources(t *testing.T) (root string, files []string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".cu") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	if len(files) == 0 {
		t.Fatalf("no .cu source under %s (kernels/cuda/kernels.cu at least)", root)
	}
	return root, files
}

// TestCompileCUDASources compiles every CUDA source in the tree for each of
// testArchs through Ark's own NVRTC path (Compile, the same options as the
// Device), failing on any error and logging NVRTC's warnings.
func TestCompileCUDASources(t *testing.T) {
	ma, mi := requireNVRTC(t)
	root, files := cudaSources(t)
	for _, rel := range files {
		src, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, arch := range testArchs {
			img, log, err := Compile(string(src), filepath.Base(rel), arch)
			if err != nil {
				t.Errorf("%s: %v\n%s", rel, err, log)
				continue
			}
			t.Logf("%s %s: NVRTC %d.%d, cubin %d bytes", rel, arch, ma, mi, len(img))
			if w := strings.TrimSpace(log); w != "" {
				t.Logf("%s %s: NVRTC warnings:\n%s", rel, arch, w)
			}
		}
	}
}

// TestCompileReportsErrors: a source with an error fails with NVRTC's log,
// which names the line, so the compile test cannot pass vacuously.
func TestCompileReportsErrors(t *testing.T) {
	requireNVRTC(t)
	_, log, err := Compile("__global__ void k(float *x) { x[0] = undeclared; }\n", "bad.cu", "sm_80")
	if err == nil {
		t.Fatal("Compile of a source with an undeclared name succeeded")
	}
	if !strings.Contains(log, "undeclared") || !strings.Contains(err.Error(), "bad.cu") {
		t.Errorf("error %q, log %q: want the file name and NVRTC's message", err, log)
	}
	if _, _, err := Compile("", "x.cu", "gfx90a"); err == nil || !strings.Contains(err.Error(), "gfx90a") {
		t.Errorf("unknown architecture: %v", err)
	}
}
