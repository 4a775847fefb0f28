package checkpoint

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage/crypt"
)

func validManifest() *Manifest {
	return &Manifest{
		FormatVersion: FormatVersion,
		Job:           "ft-1",
		Step:          50,
		WorldSize:     2,
		Created:       time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC),
		Shards: []ShardInfo{
			{Name: "rank00000-000", Rank: 0, Size: 100, StoredSize: 100, SHA256: strings.Repeat("a", 64)},
			{Name: "rank00001-000", Rank: 1, Size: 10, StoredSize: 10, SHA256: strings.Repeat("b", 64)},
		},
		Tensors: []TensorInfo{
			{Name: "w0", Shard: "rank00000-000", Offset: 0, Size: 60, DType: "f32", Shape: []int64{3, 5}},
			{Name: "w1", Shard: "rank00000-000", Offset: 60, Size: 40},
			{Name: "opt", Shard: "rank00001-000", Offset: 0, Size: 10},
		},
	}
}

func TestManifestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(m *Manifest)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(m *Manifest) {}, ""},
		{"no version", func(m *Manifest) { m.FormatVersion = 0 }, "format_version missing"},
		{"newer version", func(m *Manifest) { m.FormatVersion = 99 }, "newer than this reader"},
		{"bad job", func(m *Manifest) { m.Job = "a/b" }, "job"},
		{"negative step", func(m *Manifest) { m.Step = -1 }, "step"},
		{"zero world", func(m *Manifest) { m.WorldSize = 0 }, "world_size"},
		{"no created", func(m *Manifest) { m.Created = time.Time{} }, "created"},
		{"no shards", func(m *Manifest) { m.Shards = nil; m.Tensors = nil }, "no shards"},
		{"shard named manifest", func(m *Manifest) { m.Shards[0].Name = ManifestName; m.Tensors = nil }, "shards[0].name"},
		{"shard path", func(m *Manifest) { m.Shards[0].Name = "../x"; m.Tensors = nil }, "shards[0].name"},
		{"dup shard", func(m *Manifest) { m.Shards[1].Name = m.Shards[0].Name; m.Tensors = nil }, "duplicate"},
		{"rank out of range", func(m *Manifest) { m.Shards[1].Rank = 2 }, "shards[1].rank"},
		{"bad sha", func(m *Manifest) { m.Shards[0].SHA256 = "xyz" }, "shards[0].sha256"},
		{"upper sha", func(m *Manifest) { m.Shards[0].SHA256 = strings.Repeat("A", 64) }, "shards[0].sha256"},
		{"stored size", func(m *Manifest) { m.Shards[0].StoredSize = 99 }, "stored_size"},
		{"tensor no shard", func(m *Manifest) { m.Tensors[0].Shard = "nope" }, "no such shard"},
		{"tensor past end", func(m *Manifest) { m.Tensors[1].Size = 41 }, "outside shard"},
		{"tensor overflow", func(m *Manifest) { m.Tensors[1].Offset = 1 << 62; m.Tensors[1].Size = 1 << 62 }, "outside shard"},
		{"tensor negative", func(m *Manifest) { m.Tensors[1].Offset = -1 }, "outside shard"},
		{"dup tensor", func(m *Manifest) { m.Tensors[1].Name = "w0" }, "duplicate"},
		{"negative dim", func(m *Manifest) { m.Tensors[0].Shape = []int64{-1} }, "negative dimension"},
		{"encrypted", func(m *Manifest) {
			m.Encryption = &Encryption{Algorithm: crypt.Algorithm, KeyID: "k", ChunkSize: 64}
			for i := range m.Shards {
				m.Shards[i].StoredSize = crypt.SealedSize(m.Shards[i].Size, 64)
			}
		}, ""},
		{"encrypted bad stored size", func(m *Manifest) {
			m.Encryption = &Encryption{Algorithm: crypt.Algorithm, KeyID: "k", ChunkSize: 64}
		}, "stored_size"},
		{"unknown alg", func(m *Manifest) { m.Encryption = &Encryption{Algorithm: "rot13", KeyID: "k", ChunkSize: 64} }, "algorithm"},
		{"no key id", func(m *Manifest) { m.Encryption = &Encryption{Algorithm: crypt.Algorithm, ChunkSize: 64} }, "key_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.mutate(m)
			err := m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidManifest mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	m.Metadata = map[string]string{"loss": "1.25"}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Encode()
	if string(b) != string(b2) {
		t.Errorf("round trip changed the manifest:\n%s\n%s", b, b2)
	}
	for _, in := range []string{"", "{", "[]", "null", string(b) + "{}", `{"format_version":1}`} {
		if _, err := DecodeManifest([]byte(in)); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("DecodeManifest(%.20q) = %v, want ErrInvalidManifest", in, err)
		}
	}
	// Unknown fields from a later minor revision are ignored.
	withExtra := strings.Replace(string(b), `"job"`, `"future_field": 1, "job"`, 1)
	if _, err := DecodeManifest([]byte(withExtra)); err != nil {
		t.Errorf("unknown field rejected: %v", err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := validManifest().Encode()
	f.Add(b)
	f.Add([]byte(`{"format_version":1,"job":"j","step":1,"world_size":1,"created":"2026-01-01T00:00:00Z","shards":[{"name":"s","rank":0,"size":0,"stored_size":0,"sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	f.Add([]byte(`{"tensors":[{"offset":-9223372036854775808}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %v does not wrap ErrInvalidManifest", err)
			}
			return
		}
		// Whatever decodes must re-encode, decode again to the same bytes,
		// and index only bytes inside its shards.
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		m2, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		b2, _ := m2.Encode()
		if string(b) != string(b2) {
			t.Fatalf("encoding not stable")
		}
		for _, tn := range m.Tensors {
			s, _ := m.Shard(tn.Shard)
			if tn.Offset < 0 || tn.Offset+tn.Size > s.Size {
				t.Fatalf("tensor %s outside its shard", tn.Name)
			}
		}
	})
}

func TestSplitURI(t *testing.T) {
	tests := []struct {
		uri, store string
		ref        Ref
		bad        bool
	}{
		{uri: "file:///data/ckpt/ft/50", store: "file:///data/ckpt", ref: Ref{"ft", 50}},
		{uri: "file:///data/ckpt/ft/000000000050/", store: "file:///data/ckpt", ref: Ref{"ft", 50}},
		{uri: "file:///ft/7", store: "file:///", ref: Ref{"ft", 7}},
		{uri: "s3://bucket/p/q/job-1/000000000100", store: "s3://bucket/p/q", ref: Ref{"job-1", 100}},
		{uri: "s3://bucket/job/3", store: "s3://bucket", ref: Ref{"job", 3}},
		{uri: "s3://bucket/job/3?endpoint=http://x:1", store: "s3://bucket?endpoint=http://x:1", ref: Ref{"job", 3}},
		{uri: "s3://bucket/job/x", bad: true},
		{uri: "s3://bucket/3", bad: true},
		{uri: "/local/job/3", bad: true},
		{uri: "s3://bucket/.bad/3", bad: true},
		{uri: "s3://bucket/job/-3", bad: true},
	}
	for _, tt := range tests {
		store, ref, err := SplitURI(tt.uri)
		if tt.bad {
			if err == nil {
				t.Errorf("SplitURI(%q) = %q, %v; want an error", tt.uri, store, ref)
			}
			continue
		}
		if err != nil || store != tt.store || ref != tt.ref {
			t.Errorf("SplitURI(%q) = %q, %v, %v; want %q, %v", tt.uri, store, ref, err, tt.store, tt.ref)
		}
	}
	if got := JoinURI("s3://b/p?region=x", Ref{"j", 5}); got != "s3://b/p/j/000000000005?region=x" {
		t.Errorf("JoinURI = %q", got)
	}
}
