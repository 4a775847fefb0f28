package stores

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/storage/s3"
)

// Options carries backend settings that do not fit in a URI (flags).
type Options struct {
	S3 s3.Options
	// CreateBucket creates a missing S3 bucket when opening.
	CreateBucket bool
}

// Open returns the store a URI names:
//
//	file:///abs/dir, file://rel/dir, /abs/dir, rel/dir   file backend
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&...]    S3 backend (see s3.ParseURI)
func Open(ctx context.Context, uri string, opts Options) (storage.Store, error) {
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return filestore.Open(uri)
	}
	switch scheme {
	case "file":
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("store %q: %w", uri, err)
		}
		dir := u.Path
		if u.Host != "" && u.Host != "localhost" {
			dir = u.Host + u.Path // file://rel/dir
		}
		if dir == "" {
			return nil, fmt.Errorf("store %q: missing directory", uri)
		}
		return filestore.Open(dir)
	case "s3":
		s, err := s3.Open(uri, opts.S3)
		if err != nil {
			return nil, err
		}
		if opts.CreateBucket {
			if err := s.EnsureBucket(ctx); err != nil {
				return nil, err
			}
		}
		return s, nil
	default:
		return nil, fmt.Errorf("store %q: unknown scheme %q (want file:// or s3://)", uri, scheme)
	}
}
