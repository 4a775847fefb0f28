package driver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// Task logs are rotated by size: stdout.log is the current file, and
// stdout.log.1 ... stdout.log.N the older ones, newest first.

// Log rotation defaults.
const (
	DefaultLogMaxBytes = 64 << 20
	DefaultLogKeep     = 3
)

// rotatingWriter appends to path and rotates it when it would pass max.
type rotatingWriter struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func openRotating(path string, max int64, keep int) (*rotatingWriter, error) {
	if max <= 0 {
		max = DefaultLogMaxBytes
	}
	if keep < 0 {
		keep = 0
	}
	w := &rotatingWriter{path: path, max: max, keep: keep}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *rotatingWriter) open() error {
	f, err := openLog(w.path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

func (w *rotatingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	written := 0
	for len(p) > 0 {
		room := w.max - w.size
		if room <= 0 {
			if err := w.rotate(); err != nil {
				return written, err
			}
			room = w.max
		}
		chunk := p
		if int64(len(chunk)) > room {
			// Break at the last line end that fits, so lines stay whole
			// where they can.
			chunk = p[:room]
			if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
				chunk = chunk[:i+1]
			} else if w.size > 0 {
				// No line end fits: start the line in a new file
				// rather than split it (only a line longer than the
				// limit is split).
				if err := w.rotate(); err != nil {
					return written, err
				}
				continue
			}
		}
		n, err := w.f.Write(chunk)
		w.size += int64(n)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
		if len(p) > 0 && w.size > 0 {
			if err := w.rotate(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// rotate shifts path.(i) to path.(i+1), drops the oldest, and starts a new
// current file.
func (w *rotatingWriter) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	if w.keep == 0 {
		if err := os.Remove(w.path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return w.open()
	}
	_ = os.Remove(fmt.Sprintf("%s.%d", w.path, w.keep))
	for i := w.keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", w.path, i), fmt.Sprintf("%s.%d", w.path, i+1))
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return err
	}
	return w.open()
}

func (w *rotatingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

var _ io.WriteCloser = (*rotatingWriter)(nil)
