package crypt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

func testKey(t *testing.T, id string, b byte) *Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func seal(t *testing.T, k *Key, plain []byte, chunk int, aad string) []byte {
	t.Helper()
	e, err := NewEncrypter(iotest.HalfReader(bytes.NewReader(plain)), k, chunk, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func open(k *Key, sealed []byte, aad string) ([]byte, error) {
	return io.ReadAll(NewDecrypter(iotest.OneByteReader(bytes.NewReader(sealed)), k, []byte(aad)))
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, "k1", 1)
	for _, chunk := range []int{1, 7, 64} {
		for _, n := range []int{0, 1, 6, 7, 8, 63, 64, 65, 200} {
			plain := bytes.Repeat([]byte("abcdefghij"), 20)[:n]
			sealed := seal(t, k, plain, chunk, "job/1/s0")
			if int64(len(sealed)) != SealedSize(int64(n), chunk) {
				t.Errorf("chunk %d, n %d: sealed %d bytes, SealedSize says %d", chunk, n, len(sealed), SealedSize(int64(n), chunk))
			}
			if bytes.Contains(sealed, []byte("abcdefghij")) && n >= 10 {
				t.Errorf("plaintext visible in sealed object")
			}
			got, err := open(k, sealed, "job/1/s0")
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("chunk %d, n %d: open = %d bytes, %v", chunk, n, len(got), err)
			}
		}
	}
}

func TestTamper(t *testing.T) {
	k := testKey(t, "k1", 1)
	plain := bytes.Repeat([]byte{42}, 100)
	sealed := seal(t, k, plain, 16, "a")
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
	chunkLen := 16 + tagSize
	swapped := bytes.Clone(sealed)
	copy(swapped[headerSize:], sealed[headerSize+chunkLen:headerSize+2*chunkLen])
	copy(swapped[headerSize+chunkLen:], sealed[headerSize:headerSize+chunkLen])
	tests := []struct {
		name string
		data []byte
		key  *Key
		aad  string
	}{
		{"flipped ciphertext", flip(headerSize + 3), k, "a"},
		{"flipped tag", flip(len(sealed) - 1), k, "a"},
		{"flipped salt", flip(20), k, "a"},
		{"bad magic", flip(0), k, "a"},
		{"truncated at chunk boundary", sealed[:headerSize+2*chunkLen], k, "a"},
		{"truncated mid-chunk", sealed[:len(sealed)-5], k, "a"},
		{"extended", append(bytes.Clone(sealed), sealed[headerSize:headerSize+chunkLen]...), k, "a"},
		{"swapped chunks", swapped, k, "a"},
		{"wrong aad", sealed, k, "b"},
		{"wrong key", sealed, testKey(t, "k2", 2), "a"},
		{"empty", nil, k, "a"},
	}
	for _, tt := range tests {
		if _, err := open(tt.key, tt.data, tt.aad); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: open = %v, want ErrAuth", tt.name, err)
		}
	}
}

func TestKeyring(t *testing.T) {
	raw1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	raw2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	f := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(f, []byte("# ns keyid key\nnlp k-2026a "+raw1+"\n\nnlp k-2026b "+raw2+"\nvision v1 "+raw1[:10]+"\n"), 0o600)
	kr := NewKeyring()
	if err := kr.LoadFile(f); err == nil {
		t.Fatalf("short key accepted")
	}
	os.WriteFile(f, []byte("# ns keyid key\nnlp k-2026a "+raw1+"\n\nnlp k-2026b "+raw2+"\n"), 0o600)
	kr = NewKeyring()
	if err := kr.LoadFile(f); err != nil {
		t.Fatal(err)
	}
	if k, err := kr.ForNamespace("nlp"); err != nil || k.ID != "k-2026b" {
		t.Errorf("ForNamespace(nlp) = %v, %v; want the last key, k-2026b", k, err)
	}
	if _, err := kr.ByID("k-2026a"); err != nil {
		t.Errorf("rotated-out key not readable by id: %v", err)
	}
	if _, err := kr.ForNamespace("other"); !errors.Is(err, ErrNoKey) {
		t.Errorf("ForNamespace(other) = %v, want ErrNoKey", err)
	}
	t.Setenv("ARK_CKPT_KEY_TEAM_A", "ta1:"+raw1)
	if err := kr.LoadEnv("team-a", "absent"); err != nil {
		t.Fatal(err)
	}
	if k, err := kr.ForNamespace("team-a"); err != nil || k.ID != "ta1" {
		t.Errorf("key from env = %v, %v", k, err)
	}
	t.Setenv("ARK_CKPT_KEY_BAD", "nocolon")
	if err := kr.LoadEnv("bad"); err == nil {
		t.Errorf("malformed env key accepted")
	}
}

// FuzzDecrypt: arbitrary bytes never panic the decrypter, and nothing but
// a genuine sealing opens.
func FuzzDecrypt(f *testing.F) {
	k, _ := NewKey("k", bytes.Repeat([]byte{9}, KeySize))
	e, _ := NewEncrypter(bytes.NewReader([]byte("hello, sealed world")), k, 4, []byte("aad"))
	sealed, _ := io.ReadAll(e)
	f.Add(sealed)
	f.Add(sealed[:headerSize])
	f.Add([]byte("ARKC\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := io.ReadAll(NewDecrypter(bytes.NewReader(data), k, []byte("aad")))
		// Seeds are sealed with a random salt in each fuzz process, so only
		// the plaintext of a genuine sealing can come out.
		if err == nil && string(out) != "hello, sealed world" {
			t.Fatalf("forged input opened to %q", out)
		}
		if err != nil && !errors.Is(err, ErrAuth) {
			t.Fatalf("error %v is not ErrAuth", err)
		}
	})
}
