package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ark-sched/ark/storage"
)

// Store is an s3://BUCKET/PREFIX object store.
type Store struct {
	core   minio.Core
	bucket string
	prefix string // "" or "p/q/" (with the trailing slash)
	opts   Options
}

var (
	_ storage.Store             = (*Store)(nil)
	_ storage.IncompleteLister  = (*Store)(nil)
	_ storage.IncompleteSweeper = (*Store)(nil)
	_ storage.Describer         = (*Store)(nil)
)

// Open returns a store for s3://BUCKET/PREFIX (see ParseURI for the query
// parameters). It makes no request; see EnsureBucket.
func Open(uri string, opts Options) (*Store, error) {
	bucket, prefix, opts, err := ParseURI(uri, opts)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return New(bucket, prefix, opts)
}

// New returns a store for the bucket and key prefix.
func New(bucket, prefix string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	host, secure, err := opts.endpoint()
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := storage.ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	mo := &minio.Options{
		Creds:      opts.credentials(),
		Secure:     secure,
		Region:     opts.Region,
		MaxRetries: opts.MaxRetries,
	}
	base, err := opts.transport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: transport: %w", err)
	}
	mo.Transport = settledTransport{base: base}
	if opts.PathStyle {
		mo.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, mo)
	if err != nil {
		return nil, fmt.Errorf("s3: client for %s: %w", host, err)
	}
	return &Store{core: minio.Core{Client: c}, bucket: bucket, prefix: prefix, opts: opts}, nil
}

// URI returns s3://BUCKET/PREFIX.
func (s *Store) URI() string {
	return (&url.URL{Scheme: "s3", Host: s.bucket, Path: "/" + strings.TrimSuffix(s.prefix, "/")}).String()
}

// PartSizeConcurrency returns the multipart part size and the parts in
// flight per put.
func (s *Store) PartSizeConcurrency() (int64, int) { return s.opts.PartSize, s.opts.Concurrency }

// Client returns the underlying minio-go client.
func (s *Store) Client() *minio.Client { return s.core.Client }

// EnsureBucket creates the bucket if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3: bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.opts.Region})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("s3: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *Store) object(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put uploads r. A known size up to PartSize, or up to MaxSinglePut from a
// seekable random-access reader, is one PUT; anything larger, or of
// unknown size, is a parallel multipart upload.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		PartSize:              uint64(s.opts.PartSize),
		NumThreads:            uint(s.opts.Concurrency),
		ConcurrentStreamParts: s.opts.Concurrency > 1,
		DisableContentSha256:  !s.opts.SignPayload,
		ContentType:           "application/octet-stream",
	}
	src := storage.ContextReader(ctx, r)
	n := int64(-1)
	switch ra, ok := r.(readSeekerAt); {
	case size >= 0 && ok:
		// Seekable with random access (an in-memory checkpoint shard):
		// minio-go uploads parts straight from it, in parallel, and can
		// retry a request by seeking back.
		cur, err := ra.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		end, err := ra.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = ra.Seek(cur, io.SeekStart)
		}
		if err != nil {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		if end-cur != size {
			return fmt.Errorf("s3: put %s: %w: announced %d, reader holds %d", key, storage.ErrSizeMismatch, size, end-cur)
		}
		src, n = io.NewSectionReader(ra, cur, size), size
		if size <= max(s.opts.MaxSinglePut, s.opts.PartSize) {
			opts.DisableMultipart = true
		}
	case size >= 0 && size <= s.opts.PartSize:
		// One PUT. Buffer it so the size is checked before anything is
		// sent and the request can be retried (the body is seekable).
		buf := make([]byte, size)
		if _, err := io.ReadFull(src, buf); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("%w: stream shorter than %d bytes", storage.ErrSizeMismatch, size)
			}
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		if err := (&exactReader{r: src}).probe(); err != io.EOF {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		src, n = bytes.NewReader(buf), size
	case size >= 0:
		src = &exactReader{r: src, left: size}
	}
	start := time.Now()
	if _, err := s.core.Client.PutObject(ctx, s.bucket, obj, src, n, opts); err != nil {
		if !opts.DisableMultipart && (n < 0 || n > s.opts.PartSize) {
			s.abortSince(ctx, obj, start)
		}
		return fmt.Errorf("s3: put %s: %w", key, mapErr(err))
	}
	return nil
}

// clockSlack allows for the server's clock running behind ours when
// matching uploads by initiation time.
const clockSlack = time.Minute

// abortSince aborts the multipart uploads of obj initiated since start.
// minio-go aborts the upload of a failed put itself, but only the one
// whose id it knows: if the answer to the initiation was lost and the
// initiation retried, the first upload is orphaned. This catches it.
// (It would also abort a concurrent writer's upload of the same key:
// Store assumes one writer per key at a time, as checkpoints have.)
func (s *Store) abortSince(ctx context.Context, obj string, start time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for u := range s.core.Client.ListIncompleteUploads(ctx, s.bucket, obj, false) {
		if u.Err != nil {
			return
		}
		if u.Key == obj && !u.Initiated.Before(start.Add(-clockSlack)) {
			s.core.AbortMultipartUpload(ctx, s.bucket, obj, u.UploadID)
		}
	}
}

// SweepIncomplete aborts the multipart uploads under prefix initiated more
// than olderThan ago: those of crashed writers and those orphaned when the
// answer to an initiation was lost during a put that then succeeded.
func (s *Store) SweepIncomplete(ctx context.Context, prefix string, olderThan time.Duration) error {
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for u := range s.core.Client.ListIncompleteUploads(ctx, s.bucket, s.prefix+prefix, true) {
		if u.Err != nil {
			return fmt.Errorf("s3: sweep %q: %w", prefix, mapErr(u.Err))
		}
		if u.Initiated.Before(cutoff) {
			if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil &&
				minio.ToErrorResponse(err).Code != "NoSuchUpload" {
				errs = append(errs, fmt.Errorf("s3: sweep: abort %s: %w", u.Key, err))
			}
		}
	}
	return errors.Join(errs...)
}

type readSeekerAt interface {
	io.ReadSeeker
	io.ReaderAt
}

// exactReader fails with ErrSizeMismatch when the stream is shorter or
// longer than announced. Once the announced size has been read, the next
// Read probes the source for an extra byte. Errors are sticky, so an
// uploader that ignores an error returned with a full buffer sees it again.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		e.err = e.probe()
		return 0, e.err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		e.err = fmt.Errorf("%w: stream ended %d bytes short", storage.ErrSizeMismatch, e.left)
		return n, e.err
	case err == io.EOF:
		return n, nil // the next Read probes
	case err != nil:
		e.err = err
	}
	return n, err
}

// probe returns io.EOF if the source is exhausted, ErrSizeMismatch if it
// has more bytes, or its error.
func (e *exactReader) probe() error {
	var b [1]byte
	for {
		n, err := e.r.Read(b[:])
		if n > 0 {
			return fmt.Errorf("%w: stream longer than announced", storage.ErrSizeMismatch)
		}
		if err != nil {
			return err
		}
	}
}

// Get issues a ranged GET; a connection lost mid-body is resumed by a new
// ranged GET from the current offset.
func (s *Store) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3: get %s: %w: negative offset %d", key, storage.ErrInvalidRange, off)
	}
	if length == 0 {
		// No byte range expresses "zero bytes"; check the object instead.
		fi, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if off > fi.Size {
			return nil, fmt.Errorf("s3: get %s: %w: offset %d past size %d", key, storage.ErrInvalidRange, off, fi.Size)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	end := int64(-1)
	if length > 0 {
		end = off + length
	}
	r := &rangeReader{ctx: ctx, s: s, key: key, obj: obj, off: off, end: end}
	if err := r.open(); err != nil {
		if errors.Is(err, storage.ErrInvalidRange) {
			// An offset equal to the size is a valid empty read, which S3
			// answers with 416 like any offset past the end.
			if fi, serr := s.Stat(ctx, key); serr == nil && fi.Size == off {
				return io.NopCloser(strings.NewReader("")), nil
			}
		}
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	return r, nil
}

// Stat issues a HEAD.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	obj, err := s.object(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	var oi minio.ObjectInfo
	err = retryNet(ctx, func() (err error) {
		oi, err = s.core.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("s3: stat %s: %w", key, mapErr(err))
	}
	return storage.ObjectInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List lists the objects under the store prefix + prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error) {
	var out []storage.ObjectInfo
	for oi := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("s3: list %q: %w", prefix, mapErr(oi.Err))
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if strings.HasSuffix(key, "/") {
			continue // a "directory marker" some tools create
		}
		out = append(out, storage.ObjectInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified})
	}
	slices.SortFunc(out, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes the object; S3 treats a missing one as deleted.
func (s *Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	err = retryNet(ctx, func() error {
		return s.core.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{})
	})
	if err != nil {
		if err := mapErr(err); errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("s3: delete %s: %w", key, mapErr(err))
	}
	return nil
}

// ListIncomplete lists the keys of multipart uploads in progress under
// prefix.
func (s *Store) ListIncomplete(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for u := range s.core.Client.ListIncompleteUploads(ctx, s.bucket, s.prefix+prefix, true) {
		if u.Err != nil {
			return nil, fmt.Errorf("s3: list incomplete %q: %w", prefix, mapErr(u.Err))
		}
		out = append(out, strings.TrimPrefix(u.Key, s.prefix))
	}
	return out, nil
}

// mapErr maps S3 error codes to storage's sentinel errors, keeping the
// original in the chain.
func mapErr(err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket" && resp.Code != "NoSuchUpload"):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %w", storage.ErrInvalidRange, err)
	}
	return err
}
