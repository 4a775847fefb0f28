package server

import (
	"crypto/rand"
	"encoding/hex"
)

// maxIDAttempts bounds how many random job IDs a submission tries: with
// 24 random bits per name, three collisions in a row need millions of
// jobs of one name.
const maxIDAttempts = 3

// randomSuffix is n random bytes in hex, for IDs that must not collide.
func randomSuffix(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
