package checkpoint_test

import (
	"bytes"
	"testing"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
	"github.com/ark-sched/ark/storage/s3"
	"github.com/ark-sched/ark/storage/storagetest"
)

func newS3Store(t *testing.T) *s3.Store {
	t.Helper()
	env := storagetest.S3FromEnv(t)
	s, err := s3.New(env.Bucket, storagetest.UniquePrefix(t), s3.Options{
		Endpoint: env.Endpoint, AccessKey: env.AccessKey, SecretKey: env.SecretKey, PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTrainerHarnessS3(t *testing.T) {
	RunTrainerHarness(t, newS3Store(t))
}

// TestEncryptedS3 seals shards larger than a part, which streams them
// through a multipart upload of known size.
func TestEncryptedS3(t *testing.T) {
	s := newS3Store(t)
	k, _ := crypt.NewKey("k1", bytes.Repeat([]byte{3}, 32))
	kr := crypt.NewKeyring()
	kr.Add("ns", k)
	st := testState("enc", 1, 2, 3<<20) // 9 MiB per shard
	if _, err := checkpoint.Save(t.Context(), s, st, checkpoint.SaveOptions{Key: k}); err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.Latest(t.Context(), s, "enc", kr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	equalStates(t, got, st)
}
