// Package s3 is the s3://BUCKET/PREFIX object store: any S3-compatible
// server (AWS S3, MinIO, Ceph RGW, versitygw, cloud gateways) through
// github.com/minio/minio-go/v7.
//
// Puts stream with parallel multipart upload: an unknown-size stream is cut
// into PartSize buffers that Concurrency uploads send at once
// (minio-go's ConcurrentStreamParts; without it minio-go sends the parts of
// an unknown-size stream one at a time). Payload signing (a SHA-256 of every
// chunk) is off by default over plain http as over https: integrity comes
// from the CRC32C checksums minio-go sends and from the checkpoint manifest.
// Every request is retried with backoff on 5xx answers and connection
// errors; a ranged read that loses its connection resumes where it stopped.
// A put that fails aborts its multipart upload, so it leaves neither an
// object nor a dangling upload.
//
// Endpoint, region and credentials come from Options, then the environment
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_REGION, AWS_DEFAULT_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
// profile AWS_PROFILE).
package s3
