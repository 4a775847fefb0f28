//go:build !linux

package filestore

import (
	"io"
	"os"
)

// WritebackWriter returns a writer to f. (On Linux it also starts the disk
// write of each chunk as soon as it is written.) It hides f's ReadFrom, so
// io.CopyBuffer uses its buffer.
func WritebackWriter(f *os.File) io.Writer { return onlyWriter{f} }

type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
