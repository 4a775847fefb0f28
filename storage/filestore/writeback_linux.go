package filestore

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how much a put writes before starting its writeback.
const writebackChunk = 8 << 20

// writebackWriter writes to f and starts the disk write of every chunk as
// soon as it is written (sync_file_range), waiting for the chunk before
// it, so the disk works while the stream is still arriving instead of
// all at the final fsync, and dirty pages stay bounded. The final fsync
// still makes the data durable; errors here are only a missed speed-up.
type writebackWriter struct {
	f       *os.File
	off     int64 // bytes written
	flushed int64 // writeback started up to here
}

// WritebackWriter returns a writer to f that starts the disk write of each
// 8 MiB chunk as soon as it is written (see writebackWriter). Puts use it;
// so does the raw-disk ceiling of `ark bench ckpt`, so both use the disk
// the same way. It hides f's ReadFrom, so io.CopyBuffer uses its buffer.
func WritebackWriter(f *os.File) io.Writer { return &writebackWriter{f: f} }

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	for w.off-w.flushed >= writebackChunk {
		fd := int(w.f.Fd())
		unix.SyncFileRange(fd, w.flushed, writebackChunk, unix.SYNC_FILE_RANGE_WRITE)
		if w.flushed >= writebackChunk {
			unix.SyncFileRange(fd, w.flushed-writebackChunk, writebackChunk,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
		w.flushed += writebackChunk
	}
	return n, err
}
