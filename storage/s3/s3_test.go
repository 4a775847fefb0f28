package s3_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/s3"
	"github.com/ark-sched/ark/storage/storagetest"
)

// newTestStore returns a store on the test server under a fresh prefix.
func newTestStore(t *testing.T, env storagetest.S3Env, opts s3.Options) *s3.Store {
	t.Helper()
	opts.Endpoint = env.Endpoint
	opts.AccessKey, opts.SecretKey = env.AccessKey, env.SecretKey
	if opts.PartSize == 0 {
		opts.PartSize = 5 << 20
	}
	s, err := s3.New(env.Bucket, storagetest.UniquePrefix(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return newTestStore(t, env, s3.Options{})
	})
}

func TestConformanceSerialSigned(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	storagetest.RunWithOptions(t, func(t *testing.T) storage.Store {
		return newTestStore(t, env, s3.Options{Concurrency: 1, SignPayload: true})
	}, storagetest.Options{LargeSize: 7 << 20})
}

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri            string
		bucket, prefix string
		opts           s3.Options
		wantErr        bool
	}{
		{uri: "s3://b", bucket: "b"},
		{uri: "s3://b/", bucket: "b"},
		{uri: "s3://b/p/q/", bucket: "b", prefix: "p/q"},
		{uri: "s3://b/p?endpoint=http://127.0.0.1:9000&region=eu-west-1&part_size=8388608&concurrency=8&sign_payload=true",
			bucket: "b", prefix: "p",
			opts: s3.Options{Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", PartSize: 8 << 20, Concurrency: 8, SignPayload: true}},
		{uri: "file:///x", wantErr: true},
		{uri: "s3:///p", wantErr: true},
		{uri: "s3://b?concurrency=x", wantErr: true},
	}
	for _, tt := range tests {
		b, p, o, err := s3.ParseURI(tt.uri, s3.Options{})
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseURI(%q) err = %v, wantErr %v", tt.uri, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if b != tt.bucket || p != tt.prefix || o.Endpoint != tt.opts.Endpoint || o.Region != tt.opts.Region ||
			o.PartSize != tt.opts.PartSize || o.Concurrency != tt.opts.Concurrency || o.SignPayload != tt.opts.SignPayload {
			t.Errorf("ParseURI(%q) = %q %q %+v", tt.uri, b, p, o)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "ap-south-1")
	s, err := s3.New("b", "p", s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Client().EndpointURL().String(); got != "http://127.0.0.1:1" {
		t.Errorf("endpoint from env = %q", got)
	}
	if got := s.URI(); got != "s3://b/p" {
		t.Errorf("URI = %q", got)
	}
	if _, err := s3.New("b", "", s3.Options{Endpoint: "ftp://x"}); err == nil {
		t.Errorf("ftp endpoint accepted")
	}
	if _, err := s3.New("b", "", s3.Options{PartSize: 1 << 20}); err == nil {
		t.Errorf("1 MiB part size accepted")
	}
}

func TestCredentialsFile(t *testing.T) {
	env := storagetest.S3FromEnv(t)
	f := t.TempDir() + "/credentials"
	writeFile(t, f, "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[ark]\naws_access_key_id = "+
		env.AccessKey+"\naws_secret_access_key = "+env.SecretKey+"\n")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", f)
	t.Setenv("AWS_PROFILE", "ark")
	s, err := s3.New(env.Bucket, storagetest.UniquePrefix(t), s3.Options{Endpoint: env.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatalf("with the [ark] profile of the shared credentials file: %v", err)
	}
	t.Setenv("AWS_PROFILE", "default")
	s, err = s3.New(env.Bucket, storagetest.UniquePrefix(t), s3.Options{Endpoint: env.Endpoint, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "x", strings.NewReader("x"), 1); err == nil {
		t.Errorf("wrong credentials: Put succeeded")
	}
}
