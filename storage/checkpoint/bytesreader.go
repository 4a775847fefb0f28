package checkpoint

import (
	"errors"
	"io"
)

// multiBytes reads the concatenation of byte slices without copying them
// into one: it is an io.Reader, io.ReaderAt, io.Seeker and io.WriterTo, so
// backends can write it straight to a file or upload parts in parallel.
type multiBytes struct {
	bufs [][]byte
	ends []int64 // ends[i]: offset just past bufs[i]
	off  int64
}

func newMultiBytes(bufs [][]byte) *multiBytes {
	m := &multiBytes{}
	var end int64
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		end += int64(len(b))
		m.bufs = append(m.bufs, b)
		m.ends = append(m.ends, end)
	}
	return m
}

// Size returns the total length.
func (m *multiBytes) Size() int64 {
	if len(m.ends) == 0 {
		return 0
	}
	return m.ends[len(m.ends)-1]
}

// Len returns the number of unread bytes.
func (m *multiBytes) Len() int { return int(m.Size() - m.off) }

func (m *multiBytes) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("multiBytes: negative offset")
	}
	n := 0
	for i, end := range m.ends {
		if len(p) == 0 {
			break
		}
		if off >= end {
			continue
		}
		start := end - int64(len(m.bufs[i]))
		c := copy(p, m.bufs[i][off-start:])
		p, off, n = p[c:], off+int64(c), n+c
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

func (m *multiBytes) Read(p []byte) (int, error) {
	if m.off >= m.Size() {
		return 0, io.EOF
	}
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (m *multiBytes) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += m.Size()
	default:
		return 0, errors.New("multiBytes: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("multiBytes: negative position")
	}
	m.off = offset
	return offset, nil
}

// writeChunk bounds one Write, so a writer that checks for cancellation
// between writes gets the chance to.
const writeChunk = 8 << 20

func (m *multiBytes) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for i, end := range m.ends {
		if m.off >= end {
			continue
		}
		start := end - int64(len(m.bufs[i]))
		b := m.bufs[i][m.off-start:]
		for len(b) > 0 {
			c := b[:min(len(b), writeChunk)]
			n, err := w.Write(c)
			total += int64(n)
			m.off += int64(n)
			b = b[n:]
			if err != nil {
				return total, err
			}
			if n < len(c) {
				return total, io.ErrShortWrite
			}
		}
	}
	return total, nil
}
