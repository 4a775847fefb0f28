package s3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Defaults for Options.
const (
	DefaultPartSize    = 16 << 20
	DefaultSinglePut   = 64 << 20
	DefaultConcurrency = 4
	DefaultMaxRetries  = 10
	minPartSize        = 5 << 20 // S3's minimum for all but the last part
)

// Options configures a store. Zero fields take the environment or defaults.
type Options struct {
	// Endpoint is the server URL (http://127.0.0.1:7070) or host[:port]
	// (https). Default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS S3.
	Endpoint string
	// Region. Default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1.
	Region string
	// Static credentials. Default: the environment, then the shared
	// credentials file, else anonymous.
	AccessKey, SecretKey, SessionToken string
	// CredentialsFile and Profile select the shared credentials file.
	CredentialsFile, Profile string

	// PartSize of multipart uploads (at least 5 MiB). Default 16 MiB.
	PartSize int64
	// MaxSinglePut is the largest object sent as one PUT when the reader is
	// seekable with random access (an in-memory shard): it saves the
	// server assembling parts. Larger objects, and streams larger than
	// PartSize, go multipart. Default 64 MiB; -1 disables single PUTs of
	// objects larger than PartSize.
	MaxSinglePut int64
	// Concurrency is the number of parts of one put in flight. Default 4.
	Concurrency int
	// SignPayload signs the SHA-256 of every uploaded chunk (slower; costs
	// CPU on client and server).
	SignPayload bool
	// MaxRetries per request. Default 10.
	MaxRetries int
	// PathStyle forces path-style bucket addressing (needed by some
	// gateways on a hostname). IP endpoints always use path style.
	PathStyle bool
	// CABundle is a PEM file of extra CAs to trust for https endpoints.
	// Default: AWS_CA_BUNDLE. Ignored when Transport is set.
	CABundle string
	// Transport overrides the HTTP transport (tests, proxies).
	Transport http.RoundTripper
}

func (o Options) withDefaults() (Options, error) {
	if o.Endpoint == "" {
		o.Endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	if o.Endpoint == "" {
		o.Endpoint = "https://s3.amazonaws.com"
	}
	if o.Region == "" {
		o.Region = firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.CABundle == "" {
		o.CABundle = os.Getenv("AWS_CA_BUNDLE")
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < minPartSize {
		return o, fmt.Errorf("part size %d below the S3 minimum of %d", o.PartSize, minPartSize)
	}
	if o.MaxSinglePut == 0 {
		o.MaxSinglePut = DefaultSinglePut
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	return o, nil
}

// endpoint splits the endpoint into host[:port] and whether it is https.
func (o Options) endpoint() (host string, secure bool, err error) {
	e := o.Endpoint
	if !strings.Contains(e, "://") {
		return strings.TrimSuffix(e, "/"), true, nil
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q: %w", e, err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return "", false, fmt.Errorf("endpoint %q: scheme must be http or https", e)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("endpoint %q: want scheme://host[:port]", e)
	}
	return u.Host, u.Scheme == "https", nil
}

func (o Options) credentials() *credentials.Credentials {
	if o.AccessKey != "" || o.SecretKey != "" {
		return credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Filename: o.CredentialsFile, Profile: o.Profile},
	})
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// ParseURI splits s3://BUCKET[/PREFIX][?query] into bucket and prefix, and
// applies the query parameters endpoint, region, part_size and
// max_single_put (bytes), concurrency, sign_payload and path_style to opts.
func ParseURI(uri string, opts Options) (bucket, prefix string, _ Options, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", opts, fmt.Errorf("parse %q: %w", uri, err)
	}
	if u.Scheme != "s3" {
		return "", "", opts, fmt.Errorf("parse %q: scheme is not s3", uri)
	}
	if u.Host == "" {
		return "", "", opts, fmt.Errorf("parse %q: missing bucket", uri)
	}
	q := u.Query()
	if v := q.Get("endpoint"); v != "" {
		opts.Endpoint = v
	}
	if v := q.Get("region"); v != "" {
		opts.Region = v
	}
	for name, dst := range map[string]*int64{"part_size": &opts.PartSize, "max_single_put": &opts.MaxSinglePut} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", "", opts, fmt.Errorf("parse %q: %s: %w", uri, name, err)
			}
			*dst = n
		}
	}
	if v := q.Get("concurrency"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", "", opts, fmt.Errorf("parse %q: concurrency: %w", uri, err)
		}
		opts.Concurrency = n
	}
	for name, dst := range map[string]*bool{"sign_payload": &opts.SignPayload, "path_style": &opts.PathStyle} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", "", opts, fmt.Errorf("parse %q: %s: %w", uri, name, err)
			}
			*dst = b
		}
	}
	return u.Host, strings.Trim(u.Path, "/"), opts, nil
}

// transport returns the HTTP transport: opts.Transport, or minio-go's
// default with the CA bundle added to the system roots.
func (o Options) transport(secure bool) (http.RoundTripper, error) {
	if o.Transport != nil {
		return o.Transport, nil
	}
	t, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	if o.CABundle != "" && secure {
		pem, err := os.ReadFile(o.CABundle)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s: no PEM certificates", o.CABundle)
		}
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

var errClosedBody = errors.New("s3: read after close")

// backoff returns the wait before retry attempt n (0-based): exponential
// from 100 ms, capped at 2 s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 5)
	return min(d, 2*time.Second)
}
