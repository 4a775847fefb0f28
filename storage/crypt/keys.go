package crypt

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

// Key is a named 256-bit key.
type Key struct {
	ID  string
	key [KeySize]byte
}

// NewKey returns a key from 32 raw bytes.
func NewKey(id string, raw []byte) (*Key, error) {
	if id == "" || strings.ContainsAny(id, " \t\n:") {
		return nil, fmt.Errorf("crypt: invalid key id %q", id)
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("crypt: key %s is %d bytes, want %d", id, len(raw), KeySize)
	}
	k := &Key{ID: id}
	copy(k.key[:], raw)
	return k, nil
}

// ParseKey decodes a key given as base64 (standard or URL alphabet) or hex.
func ParseKey(id, s string) (*Key, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.URLEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, hex.DecodeString,
	} {
		if raw, err := dec(s); err == nil && len(raw) == KeySize {
			return NewKey(id, raw)
		}
	}
	return nil, fmt.Errorf("crypt: key %s: want %d bytes as base64 or hex", id, KeySize)
}

// ErrNoKey: no key for the namespace or key id.
var ErrNoKey = errors.New("crypt: no such key")

// Keyring holds keys by id and the current (write) key per namespace.
type Keyring struct {
	byID    map[string]*Key
	current map[string]*Key
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring {
	return &Keyring{byID: map[string]*Key{}, current: map[string]*Key{}}
}

// Add adds a key and makes it the namespace's current key.
func (kr *Keyring) Add(namespace string, k *Key) error {
	if old, ok := kr.byID[k.ID]; ok && old.key != k.key {
		return fmt.Errorf("crypt: key id %s defined twice with different keys", k.ID)
	}
	kr.byID[k.ID] = k
	kr.current[namespace] = k
	return nil
}

// ForNamespace returns the key new checkpoints of namespace are sealed with.
func (kr *Keyring) ForNamespace(namespace string) (*Key, error) {
	if k, ok := kr.current[namespace]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w for namespace %q", ErrNoKey, namespace)
}

// ByID returns the key with the given id (as recorded in a manifest).
func (kr *Keyring) ByID(id string) (*Key, error) {
	if k, ok := kr.byID[id]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: key id %q", ErrNoKey, id)
}

// LoadFile adds the keys of a key file: one key per line,
// "NAMESPACE KEYID KEY" (KEY in base64 or hex); blank lines and lines
// starting with # are ignored. A later line for a namespace replaces its
// current key; earlier keys stay readable by id (key rotation).
func (kr *Keyring) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("crypt: key file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return fmt.Errorf("crypt: %s:%d: want NAMESPACE KEYID KEY", path, n)
		}
		k, err := ParseKey(fields[1], fields[2])
		if err != nil {
			return fmt.Errorf("crypt: %s:%d: %w", path, n, err)
		}
		if err := kr.Add(fields[0], k); err != nil {
			return fmt.Errorf("crypt: %s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("crypt: key file %s: %w", path, err)
	}
	return nil
}

// EnvName returns the variable holding namespace's key:
// ARK_CKPT_KEY_<NAMESPACE>, upper-cased, with - and . as _.
func EnvName(namespace string) string {
	return "ARK_CKPT_KEY_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(namespace))
}

// LoadEnv adds the key of each namespace from its environment variable
// (EnvName), given as KEYID:KEY. Namespaces without the variable are
// skipped.
func (kr *Keyring) LoadEnv(namespaces ...string) error {
	for _, ns := range namespaces {
		v := os.Getenv(EnvName(ns))
		if v == "" {
			continue
		}
		id, key, ok := strings.Cut(v, ":")
		if !ok {
			return fmt.Errorf("crypt: %s: want KEYID:KEY", EnvName(ns))
		}
		k, err := ParseKey(id, key)
		if err != nil {
			return fmt.Errorf("crypt: %s: %w", EnvName(ns), err)
		}
		if err := kr.Add(ns, k); err != nil {
			return err
		}
	}
	return nil
}
