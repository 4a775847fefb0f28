//go:build !unix

package clustersim

func openFilesFor(n int) uint64 { return 0 }

func raiseOpenFiles(want uint64) (uint64, error) { return 0, nil }
