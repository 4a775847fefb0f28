package train

import (
	"fmt"
	"os"
	"strings"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
)

// KeyFileEnv names the file in which the agent gives a task its
// namespace's checkpoint key (one line, "KEYID KEY", KEY in base64).
const KeyFileEnv = "ARK_CHECKPOINT_KEY_FILE"

// CheckpointKeys is a task's checkpoint key: what it seals the checkpoints
// it writes with and the only key it opens checkpoints with, so that a
// checkpoint of another namespace (or one whose key was deleted) does not
// load. A nil *CheckpointKeys seals nothing and opens only plain
// checkpoints.
type CheckpointKeys struct {
	key *crypt.Key
}

// NewCheckpointKeys returns the keys of a task holding key.
func NewCheckpointKeys(key *crypt.Key) *CheckpointKeys { return &CheckpointKeys{key: key} }

// Seal is the key new checkpoints are sealed with, nil for none.
func (k *CheckpointKeys) Seal() *crypt.Key {
	if k == nil {
		return nil
	}
	return k.key
}

// ByID returns the key a manifest names: this task's, or crypt.ErrNoKey.
func (k *CheckpointKeys) ByID(id string) (*crypt.Key, error) {
	if k == nil || k.key == nil {
		return nil, fmt.Errorf("%w: the checkpoint is sealed with key %s and this task has no checkpoint key (%s unset)", crypt.ErrNoKey, id, KeyFileEnv)
	}
	if id != k.key.ID {
		return nil, fmt.Errorf("%w: the checkpoint is sealed with key %s, not this namespace's key %s: it belongs to another namespace, or its key was deleted", crypt.ErrNoKey, id, k.key.ID)
	}
	return k.key, nil
}

// keys is k as checkpoint.Open takes it: even a nil k, whose ByID says
// why an encrypted checkpoint does not open.
func (k *CheckpointKeys) keys() checkpoint.Keys { return k }

// ReadKeyFile reads a key file the agent wrote.
func ReadKeyFile(path string) (*CheckpointKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	id, enc, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok {
		return nil, fmt.Errorf("checkpoint key file %s: want KEYID KEY", path)
	}
	key, err := crypt.ParseKey(id, enc)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file %s: %w", path, err)
	}
	return NewCheckpointKeys(key), nil
}

// TaskKeys reads the checkpoint key the agent gave this task
// ($ARK_CHECKPOINT_KEY_FILE); nil when it gave none (servers without a
// cluster key, or a task run by hand).
func TaskKeys() (*CheckpointKeys, error) {
	path := os.Getenv(KeyFileEnv)
	if path == "" {
		return nil, nil
	}
	return ReadKeyFile(path)
}
