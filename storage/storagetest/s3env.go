package storagetest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// S3Env is the test S3 server found in the environment.
type S3Env struct {
	Endpoint  string // ARK_TEST_S3_ENDPOINT, e.g. http://127.0.0.1:7070
	AccessKey string // AWS_ACCESS_KEY_ID
	SecretKey string // AWS_SECRET_ACCESS_KEY
	Bucket    string // ARK_TEST_S3_BUCKET, default "ark-test"
}

// S3FromEnv returns the test S3 server named by ARK_TEST_S3_ENDPOINT,
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (.ci/s3.sh prints them). When
// they are absent it skips the test with a loud message, or fails it when
// CI=true: CI must run the S3 tests.
func S3FromEnv(t testing.TB) S3Env {
	t.Helper()
	e := S3Env{
		Endpoint:  os.Getenv("ARK_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Bucket:    os.Getenv("ARK_TEST_S3_BUCKET"),
	}
	if e.Bucket == "" {
		e.Bucket = "ark-test"
	}
	if e.Endpoint == "" || e.AccessKey == "" || e.SecretKey == "" {
		msg := "!!! S3 TESTS NOT RUN: set ARK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY " +
			"(eval \"$(.ci/s3.sh)\" starts a local versitygw and prints them) !!!"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the S3 tests are required)")
		}
		t.Skip(msg)
	}
	return e
}

// UniquePrefix returns a fresh key prefix for one test, so tests sharing a
// bucket never see each other's objects.
func UniquePrefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}
