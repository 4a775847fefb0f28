package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors shared by all backends. Backends wrap them, so match with
// errors.Is.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrInvalidKey: the key breaks the key rules (see ValidateKey).
	ErrInvalidKey = errors.New("invalid object key")
	// ErrInvalidRange: a ranged read starts past the end of the object.
	ErrInvalidRange = errors.New("invalid range")
	// ErrSizeMismatch: a put announced a size and the reader gave another.
	ErrSizeMismatch = errors.New("object size does not match the announced size")
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is the minimal interface a backend implements. Keys are
// slash-separated relative paths (see ValidateKey). All methods are safe for
// concurrent use.
type Store interface {
	// Put stores the bytes of r under key, replacing any previous object.
	// size is the exact length when known, or -1 for a stream of unknown
	// size. The object appears atomically and only when Put returns nil: if
	// r returns an error, ctx is cancelled or the backend fails, no object
	// (and no partial upload) is left behind and the previous object, if any,
	// is unchanged.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Get opens the object for reading from byte offset off. length is the
	// number of bytes to read, or -1 for the rest of the object; a range
	// running past the end is clipped. off may equal the size (an empty
	// read); past it, Get fails with ErrInvalidRange. A missing object is
	// ErrNotFound, reported by Get itself, not by the first Read.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)

	// Stat returns the object's size and modification time, or ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List returns every object whose key starts with prefix (a plain string
	// prefix, not a directory), sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// IncompleteLister is implemented by backends that can hold unfinished
// uploads (S3 multipart uploads, temporary files). It lists the keys of the
// unfinished uploads under prefix; after every Put has returned it must be
// empty, which the conformance suite checks.
type IncompleteLister interface {
	ListIncomplete(ctx context.Context, prefix string) ([]string, error)
}

// IncompleteSweeper is implemented by backends that can clean up
// unfinished uploads nobody will finish: those a crashed writer left, and
// S3 multipart uploads whose initiation answer was lost (the client never
// learnt their id). It removes those under prefix older than olderThan.
type IncompleteSweeper interface {
	SweepIncomplete(ctx context.Context, prefix string, olderThan time.Duration) error
}

// Describer is implemented by backends that can name where they store
// objects, as a URI (file:///data/ckpt, s3://bucket/prefix).
type Describer interface {
	URI() string
}

// ValidateKey checks the key rules every backend enforces: a key is a
// non-empty, UTF-8, slash-separated relative path with no empty, "." or
// ".." segments, no backslash or NUL, at most 1024 bytes, and no segment starting
// with ".ark-" (reserved for backends' own bookkeeping).
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > 1024 {
		return fmt.Errorf("%w: longer than 1024 bytes", ErrInvalidKey)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w %q: not UTF-8", ErrInvalidKey, key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w %q: contains a backslash or NUL", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%w %q: empty path segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w %q: %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, ".ark-"):
			return fmt.Errorf("%w %q: segments starting with .ark- are reserved", ErrInvalidKey, key)
		}
	}
	return nil
}

// ReadAll reads a whole object into memory.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// ContextReader returns r, failing reads with ctx's error once ctx is done,
// so a copy loop over it stops when ctx is cancelled. If r is an
// io.WriterTo, so is the result (checking ctx before each Write), so copies
// keep avoiding an intermediate buffer.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	if ctx.Done() == nil {
		return r
	}
	if _, ok := r.(io.WriterTo); ok {
		return &ctxWriterTo{ctxReader{ctx: ctx, r: r}}
	}
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type ctxWriterTo struct{ ctxReader }

func (c *ctxWriterTo) WriteTo(w io.Writer) (int64, error) {
	return c.r.(io.WriterTo).WriteTo(ctxWriter{ctx: c.ctx, w: w})
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
