package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Algorithm names the scheme in manifests.
const Algorithm = "AES-256-GCM-CHUNKED-v1"

// DefaultChunkSize is the plaintext size of a chunk.
const DefaultChunkSize = 1 << 20

const (
	magic      = "ARKC"
	version    = 1
	saltSize   = 32
	headerSize = len(magic) + 1 + 4 + saltSize
	tagSize    = 16
	maxChunk   = 64 << 20
)

// ErrAuth: the ciphertext or its associated data was altered, or the key is
// wrong.
var ErrAuth = errors.New("crypt: message authentication failed (wrong key or corrupt data)")

// SealedSize returns the stored size of plain bytes sealed in chunks of
// chunkSize: the header plus a tag per chunk (an empty object has one empty
// chunk).
func SealedSize(plain int64, chunkSize int) int64 {
	chunks := (plain + int64(chunkSize) - 1) / int64(chunkSize)
	if chunks == 0 {
		chunks = 1
	}
	return int64(headerSize) + plain + chunks*tagSize
}

func objectAEAD(key *Key, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key.key[:], salt, "ark checkpoint shard", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(i uint64, final bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[:8], i)
	if final {
		n[11] = 1
	}
	return n
}

// Encrypter reads plaintext from r and yields the sealed object.
type Encrypter struct {
	r     io.Reader
	aead  cipher.AEAD
	aad   []byte
	chunk int
	in    []byte
	obuf  []byte // sealing buffer
	out   []byte // pending output
	next  []byte // one byte read ahead, to know whether a chunk is final
	i     uint64
	done  bool
	err   error
}

// NewEncrypter returns a reader of the sealed form of r under key, with
// associated data aad (bind it to the object's identity).
func NewEncrypter(r io.Reader, key *Key, chunkSize int, aad []byte) (*Encrypter, error) {
	if chunkSize <= 0 || chunkSize > maxChunk {
		return nil, fmt.Errorf("crypt: chunk size %d out of range", chunkSize)
	}
	salt := make([]byte, saltSize)
	rand.Read(salt)
	aead, err := objectAEAD(key, salt)
	if err != nil {
		return nil, fmt.Errorf("crypt: %w", err)
	}
	hdr := make([]byte, 0, headerSize)
	hdr = append(hdr, magic...)
	hdr = append(hdr, version)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(chunkSize))
	hdr = append(hdr, salt...)
	return &Encrypter{
		r: r, aead: aead, aad: aad, chunk: chunkSize,
		in:  make([]byte, chunkSize+1),
		out: hdr,
	}, nil
}

func (e *Encrypter) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if e.done {
			return 0, io.EOF
		}
		e.fill()
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// fill seals the next chunk into out. It reads chunk+1 bytes (keeping the
// extra one for the next chunk) so it knows whether this chunk is the last.
func (e *Encrypter) fill() {
	buf := e.in[:0]
	buf = append(buf, e.next...)
	n, err := io.ReadFull(e.r, buf[len(buf):e.chunk+1])
	buf = buf[:len(buf)+n]
	final := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		final = true
	case err != nil:
		e.err = err
		return
	}
	if final {
		e.next = nil
	} else {
		e.next = append(e.next[:0], buf[e.chunk])
		buf = buf[:e.chunk]
	}
	if e.obuf == nil {
		e.obuf = make([]byte, 0, e.chunk+tagSize)
	}
	e.out = e.aead.Seal(e.obuf[:0], nonce(e.i, final), buf, e.aad)
	e.i++
	e.done = final
}

// Decrypter reads a sealed object and yields the plaintext. A Read that
// returns io.EOF has authenticated the whole object.
type Decrypter struct {
	r     io.Reader
	key   *Key
	aad   []byte
	aead  cipher.AEAD
	chunk int
	in    []byte
	obuf  []byte
	out   []byte
	next  []byte
	i     uint64
	done  bool
	err   error
}

// NewDecrypter returns a reader of the plaintext of the sealed object r.
func NewDecrypter(r io.Reader, key *Key, aad []byte) *Decrypter {
	return &Decrypter{r: r, key: key, aad: aad}
}

func (d *Decrypter) header() error {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(d.r, hdr); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: truncated header", ErrAuth)
		}
		return err
	}
	if string(hdr[:4]) != magic || hdr[4] != version {
		return fmt.Errorf("%w: not a sealed object (bad magic or version)", ErrAuth)
	}
	d.chunk = int(binary.BigEndian.Uint32(hdr[5:9]))
	if d.chunk <= 0 || d.chunk > maxChunk {
		return fmt.Errorf("%w: chunk size %d out of range", ErrAuth, d.chunk)
	}
	aead, err := objectAEAD(d.key, hdr[9:])
	if err != nil {
		return err
	}
	d.aead = aead
	d.in = make([]byte, d.chunk+tagSize+1)
	d.obuf = make([]byte, 0, d.chunk)
	return nil
}

func (d *Decrypter) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

func (d *Decrypter) fill() {
	if d.aead == nil {
		if d.err = d.header(); d.err != nil {
			return
		}
	}
	full := d.chunk + tagSize
	buf := d.in[:0]
	buf = append(buf, d.next...)
	n, err := io.ReadFull(d.r, buf[len(buf):full+1])
	buf = buf[:len(buf)+n]
	final := false
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		final = true
	case err != nil:
		d.err = err
		return
	}
	if final {
		d.next = nil
	} else {
		d.next = append(d.next[:0], buf[full])
		buf = buf[:full]
	}
	if len(buf) < tagSize {
		d.err = fmt.Errorf("%w: truncated chunk %d", ErrAuth, d.i)
		return
	}
	out, err := d.aead.Open(d.obuf[:0], nonce(d.i, final), buf, d.aad)
	if err != nil {
		d.err = fmt.Errorf("%w: chunk %d", ErrAuth, d.i)
		return
	}
	d.out = out
	d.i++
	d.done = final
}
