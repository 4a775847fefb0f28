package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// maxResumes bounds how many times one Get resumes after losing its
// connection mid-body.
const maxResumes = 10

// rangeReader reads [off, end) of an object (end -1: to the end), reopening
// the ranged GET from the current offset when the body fails mid-way.
type rangeReader struct {
	ctx     context.Context
	s       *Store
	key     string
	obj     string
	off     int64 // next byte to read
	end     int64
	etag    string
	body    io.ReadCloser
	resumes int
	closed  bool
}

func (r *rangeReader) open() error {
	var opts minio.GetObjectOptions
	if r.end >= 0 {
		if err := opts.SetRange(r.off, r.end-1); err != nil {
			return err
		}
	} else if r.off > 0 {
		if err := opts.SetRange(r.off, 0); err != nil {
			return err
		}
	}
	if r.etag != "" {
		// A resumed read must see the same object, not a replacement.
		if err := opts.SetMatchETag(r.etag); err != nil {
			return err
		}
	}
	var (
		body io.ReadCloser
		oi   minio.ObjectInfo
	)
	err := retryNet(r.ctx, func() (err error) {
		body, oi, _, err = r.s.core.GetObject(r.ctx, r.s.bucket, r.obj, opts)
		return err
	})
	if err != nil {
		return mapErr(err)
	}
	if r.etag == "" {
		r.etag = oi.ETag
	}
	r.body = body
	return nil
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errClosedBody
	}
	if r.end >= 0 && r.off >= r.end {
		return 0, io.EOF
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, fmt.Errorf("s3: get %s: resume at %d: %w", r.key, r.off, err)
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if err == nil || err == io.EOF {
			if err == io.EOF && r.end >= 0 && r.off < r.end {
				// The range was clipped at the end of the object.
				return n, io.EOF
			}
			return n, err
		}
		// The connection failed mid-body: resume unless the caller gave up.
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil || r.resumes >= maxResumes || errors.Is(err, context.Canceled) {
			return n, fmt.Errorf("s3: get %s at offset %d: %w", r.key, r.off, err)
		}
		r.resumes++
		if n > 0 {
			return n, nil
		}
		select {
		case <-time.After(backoff(r.resumes - 1)):
		case <-r.ctx.Done():
			return 0, fmt.Errorf("s3: get %s: %w", r.key, r.ctx.Err())
		}
	}
}

func (r *rangeReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}
