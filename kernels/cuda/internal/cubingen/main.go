// Command cubingen compiles kernels/cuda/kernels.cu with NVRTC into the
// images the ark binary embeds (cubins for sm_80 and sm_90, PTX for
// compute_90) and their manifest. `go generate ./kernels/cuda` runs it in
// that directory; it needs NVRTC (Debian: libnvrtc11.2 and
// libnvrtc-builtins11.8 from non-free), not a GPU.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ark-sched/ark/kernels/cuda"
)

func main() {
	dir := flag.String("dir", "images", "directory to write the images and manifest.json to")
	src := flag.String("src", "kernels.cu", "CUDA source to compile")
	flag.Parse()
	if err := run(*src, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "cubingen:", err)
		os.Exit(1)
	}
}

func run(srcPath, dir string) error {
	src, err := os.ReadFile(srcPath)
	if err != nil {
		return err
	}
	files, err := cuda.GenerateImages(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Images of architectures no longer built would be embedded for nothing.
	old, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if _, keep := files[e.Name()]; !keep && !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return err
		}
		if !strings.HasSuffix(n, ".json") {
			fmt.Printf("%s/%s: %d bytes\n", dir, n, len(files[n]))
		}
	}
	return nil
}
