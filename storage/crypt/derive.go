package crypt

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
)

// Derive returns a 32-byte secret for purpose, derived from k with HKDF
// (RFC 5869, SHA-256): whoever holds a namespace's key can compute it,
// and it reveals nothing of the key, which is never used for anything but
// sealing.
func (k *Key) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.key[:], nil, purpose, 32)
	if err != nil { // only for a length past 255 hashes
		panic(err)
	}
	return out
}

// ServiceAdminToken is the bearer token with which the servers manage the
// adapters of service job's replicas (POST /v1/jobs/JOB/adapters): derived
// from the job's namespace key, which the servers and the job's own tasks
// hold, so that no other secret has to reach either.
func ServiceAdminToken(k *Key, job string) string {
	return hex.EncodeToString(k.Derive("ark service admin\x00" + job))
}
