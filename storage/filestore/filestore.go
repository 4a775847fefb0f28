package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ark-sched/ark/storage"
)

// tmpDir is the directory under the root that holds puts in progress. Its
// name starts with ".ark-", which storage.ValidateKey reserves.
const tmpDir = ".ark-tmp"

// copyBufSize is the buffer used to copy a stream into a file: large enough
// that the copy costs few system calls per megabyte.
const copyBufSize = 4 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Store is a file://DIR object store.
type Store struct {
	root string
}

var (
	_ storage.Store             = (*Store)(nil)
	_ storage.IncompleteLister  = (*Store)(nil)
	_ storage.IncompleteSweeper = (*Store)(nil)
	_ storage.Describer         = (*Store)(nil)
)

// Open returns a store rooted at dir, creating the directory if needed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("filestore: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: resolve %s: %w", dir, err)
	}
	// Only the root: the staging directory is made by the first put, so
	// that a reader (a task loading a base model from a directory it may
	// not write) can open a store.
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: create %s: %w", abs, err)
	}
	return &Store{root: abs}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// URI returns file://ROOT.
func (s *Store) URI() string { return (&url.URL{Scheme: "file", Path: s.root}).String() }

func (s *Store) path(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put streams r into a temporary file, fsyncs it and renames it into place.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	dst, err := s.path(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Join(s.root, tmpDir), 0o755); err == nil {
			f, err = os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
		}
	}
	if err != nil {
		return fmt.Errorf("filestore: put %s: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bp := bufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(WritebackWriter(f), storage.ContextReader(ctx, r), *bp)
	bufPool.Put(bp)
	if err != nil {
		return fmt.Errorf("filestore: put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("filestore: put %s: %w: announced %d, read %d", key, storage.ErrSizeMismatch, size, n)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: put %s: fsync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("filestore: put %s: close: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: put %s: %w", key, err)
	}
	if err := s.rename(tmp, dst); err != nil {
		return fmt.Errorf("filestore: put %s: %w", key, err)
	}
	return nil
}

// rename moves tmp to dst, creating dst's directory, and fsyncs the
// directory. A concurrent Delete may remove an emptied directory between
// MkdirAll and Rename, so that race is retried.
func (s *Store) rename(tmp, dst string) error {
	dir := filepath.Dir(dst)
	var err error
	for range 5 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err = os.Rename(tmp, dst); err == nil {
			return syncDir(dir)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Get opens the object and seeks to off.
func (s *Store) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("filestore: get %s: %w: negative offset %d", key, storage.ErrInvalidRange, off)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("filestore: get %s: %w", key, mapErr(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("filestore: get %s: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("filestore: get %s: %w", key, storage.ErrNotFound)
	}
	if off > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("filestore: get %s: %w: offset %d past size %d", key, storage.ErrInvalidRange, off, fi.Size())
	}
	n := fi.Size() - off
	if length >= 0 && length < n {
		n = length
	}
	return &section{r: io.NewSectionReader(f, off, n), f: f}, nil
}

type section struct {
	r *io.SectionReader
	f *os.File
}

func (s *section) Read(p []byte) (int, error)              { return s.r.Read(p) }
func (s *section) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }
func (s *section) Close() error                            { return s.f.Close() }

// Stat returns the object's size and modification time.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("filestore: stat %s: %w", key, mapErr(err))
	}
	if fi.IsDir() {
		return storage.ObjectInfo{}, fmt.Errorf("filestore: stat %s: %w", key, storage.ErrNotFound)
	}
	return storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the directory holding prefix's last complete segment.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error) {
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir := prefix[:i]
		if storage.ValidateKey(dir) != nil {
			return nil, nil // no valid key can start with this prefix
		}
		start = filepath.Join(s.root, filepath.FromSlash(dir))
	}
	var out []storage.ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking, or start does not exist
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == tmpDir {
				return fs.SkipDir
			}
			// Prune directories that cannot hold a matching key.
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, storage.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("filestore: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes the object and then any directories it leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: delete %s: %w", key, err)
	}
	// Best effort: Remove fails on a non-empty directory, which ends the walk.
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if os.Remove(filepath.Join(s.root, filepath.FromSlash(dir))) != nil {
			break
		}
	}
	return nil
}

// ListIncomplete lists the temporary files of puts in progress (or left by a
// crash). Their names are not keys; prefix is ignored.
func (s *Store) ListIncomplete(ctx context.Context, prefix string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, tmpDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing was ever put
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: list incomplete: %w", err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, path.Join(tmpDir, e.Name()))
	}
	return out, nil
}

// SweepIncomplete removes temporary files older than age: leftovers of
// puts that crashed. Puts still running are younger and left alone. Their
// names are not keys; prefix is ignored.
func (s *Store) SweepIncomplete(ctx context.Context, prefix string, age time.Duration) error {
	dir := filepath.Join(s.root, tmpDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filestore: sweep: %w", err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < age {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("filestore: sweep: %w", err)
		}
	}
	return nil
}

func mapErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return err
}
