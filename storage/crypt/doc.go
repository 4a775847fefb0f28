// Package crypt encrypts checkpoint shards at rest: AES-256-GCM over
// fixed-size chunks, so shards of any size stream through a bounded buffer
// and the store never sees plaintext.
//
// A sealed object is a header (magic "ARKC", version 1, chunk size, a random
// 32-byte salt) followed by chunks of ciphertext, each with its 16-byte GCM
// tag. Each object gets its own key, derived from the namespace key and the
// salt with HKDF-SHA256; chunk i is sealed under nonce i with the final
// chunk flagged, and the caller's associated data (the object's identity)
// is authenticated with every chunk. Reordered, truncated, extended or
// swapped chunks and objects fail to open.
//
// Keys are 32 bytes, named by a key id that the checkpoint manifest
// records. A Keyring holds them per namespace, loaded from a key file or
// from the environment (ARK_CKPT_KEY_<NAMESPACE>=KEYID:BASE64KEY).
package crypt
