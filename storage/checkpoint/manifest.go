package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/ark-sched/ark/storage/crypt"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// ManifestName is the manifest's object name inside a checkpoint.
const ManifestName = "MANIFEST.json"

// maxManifestSize bounds what readers accept as a manifest.
const maxManifestSize = 64 << 20

// Sentinel errors.
var (
	// ErrNotFound: no complete checkpoint (no valid manifest).
	ErrNotFound = errors.New("checkpoint not found")
	// ErrInvalidManifest: the manifest does not decode or validate.
	ErrInvalidManifest = errors.New("invalid checkpoint manifest")
	// ErrCorruptShard: a shard's size or SHA-256 differs from the manifest.
	ErrCorruptShard = errors.New("corrupt checkpoint shard")
	// ErrInvalid: a checkpoint handed to Save breaks the rules.
	ErrInvalid = errors.New("invalid checkpoint")
	// ErrExists: Copy's destination holds that checkpoint already.
	ErrExists = errors.New("checkpoint already exists")
)

// Manifest describes one complete checkpoint.
type Manifest struct {
	FormatVersion int               `json:"format_version"`
	Job           string            `json:"job"`
	Step          int64             `json:"step"`
	WorldSize     int               `json:"world_size"`
	Created       time.Time         `json:"created"`
	Namespace     string            `json:"namespace,omitempty"`
	Encryption    *Encryption       `json:"encryption,omitempty"`
	Shards        []ShardInfo       `json:"shards"`
	Tensors       []TensorInfo      `json:"tensors"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// ShardInfo describes one shard object.
type ShardInfo struct {
	Name string `json:"name"`
	Rank int    `json:"rank"`
	// Size is the shard's data size (plaintext when encrypted).
	Size int64 `json:"size"`
	// StoredSize is the object's size in the store (Size unless encrypted).
	StoredSize int64 `json:"stored_size"`
	// SHA256 is the hex SHA-256 of the stored object, so a checkpoint can be
	// verified without its key.
	SHA256 string `json:"sha256"`
}

// TensorInfo locates a tensor inside a shard's data.
type TensorInfo struct {
	Name   string  `json:"name"`
	Shard  string  `json:"shard"`
	Offset int64   `json:"offset"`
	Size   int64   `json:"size"`
	DType  string  `json:"dtype,omitempty"`
	Shape  []int64 `json:"shape,omitempty"`
}

// Encryption says how shards are sealed.
type Encryption struct {
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"key_id"`
	ChunkSize int    `json:"chunk_size"`
}

// Shard returns the shard with the given name.
func (m *Manifest) Shard(name string) (ShardInfo, bool) {
	for _, s := range m.Shards {
		if s.Name == name {
			return s, true
		}
	}
	return ShardInfo{}, false
}

// Bytes returns the total data size of the shards.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, s := range m.Shards {
		n += s.Size
	}
	return n
}

// Encode returns the manifest as indented JSON, after validating it.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeManifest decodes and validates a manifest. Unknown fields are
// ignored (a later format may add some); a newer format_version is refused.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, larger than %d", ErrInvalidManifest, len(b), maxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	sha256R = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidName reports whether s may name a job or a shard: 1 to 128 of
// [A-Za-z0-9._-], not starting with '.' or '-'.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Validate checks the manifest's invariants. Errors wrap
// ErrInvalidManifest and name the offending field.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
	}
	switch {
	case m.FormatVersion == 0:
		return bad("format_version missing")
	case m.FormatVersion > FormatVersion:
		return bad("format_version %d is newer than this reader (%d)", m.FormatVersion, FormatVersion)
	case m.FormatVersion < 0:
		return bad("format_version %d", m.FormatVersion)
	case !ValidName(m.Job):
		return bad("job %q: not a valid name", m.Job)
	case m.Step < 0 || m.Step > MaxStep:
		return bad("step %d out of range [0, %d]", m.Step, int64(MaxStep))
	case m.WorldSize < 1:
		return bad("world_size %d: must be >= 1", m.WorldSize)
	case m.Created.IsZero():
		return bad("created missing")
	case len(m.Shards) == 0:
		return bad("no shards")
	}
	if e := m.Encryption; e != nil {
		switch {
		case e.Algorithm != crypt.Algorithm:
			return bad("encryption.algorithm %q unknown", e.Algorithm)
		case e.KeyID == "":
			return bad("encryption.key_id missing")
		case e.ChunkSize <= 0 || e.ChunkSize > 64<<20:
			return bad("encryption.chunk_size %d out of range", e.ChunkSize)
		}
	}
	shards := make(map[string]ShardInfo, len(m.Shards))
	for i, s := range m.Shards {
		switch {
		case !ValidName(s.Name) || s.Name == ManifestName:
			return bad("shards[%d].name %q: not a valid shard name", i, s.Name)
		case s.Rank < 0 || s.Rank >= m.WorldSize:
			return bad("shards[%d].rank %d out of range [0, %d)", i, s.Rank, m.WorldSize)
		case s.Size < 0:
			return bad("shards[%d].size %d: negative", i, s.Size)
		case !sha256R.MatchString(s.SHA256):
			return bad("shards[%d].sha256 %q: want 64 lower-case hex digits", i, s.SHA256)
		}
		if _, dup := shards[s.Name]; dup {
			return bad("shards[%d].name %q: duplicate", i, s.Name)
		}
		want := s.Size
		if m.Encryption != nil {
			if s.Size > math.MaxInt64/2 {
				return bad("shards[%d].size %d too large", i, s.Size)
			}
			want = crypt.SealedSize(s.Size, m.Encryption.ChunkSize)
		}
		if s.StoredSize != want {
			return bad("shards[%d].stored_size %d: want %d", i, s.StoredSize, want)
		}
		shards[s.Name] = s
	}
	tensors := make(map[string]bool, len(m.Tensors))
	for i, t := range m.Tensors {
		s, ok := shards[t.Shard]
		switch {
		case t.Name == "":
			return bad("tensors[%d].name missing", i)
		case tensors[t.Name]:
			return bad("tensors[%d].name %q: duplicate", i, t.Name)
		case !ok:
			return bad("tensors[%d] (%s).shard %q: no such shard", i, t.Name, t.Shard)
		case t.Offset < 0 || t.Size < 0 || t.Offset > s.Size-t.Size:
			return bad("tensors[%d] (%s): [%d, +%d) outside shard %s of %d bytes", i, t.Name, t.Offset, t.Size, s.Name, s.Size)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return bad("tensors[%d] (%s).shape %v: negative dimension", i, t.Name, t.Shape)
			}
		}
		tensors[t.Name] = true
	}
	return nil
}
