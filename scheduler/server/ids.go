package server

import (
	"crypto/rand"
	"encoding/hex"
)

// randomSuffix is n random bytes in hex, for IDs that must not collide.
func randomSuffix(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
