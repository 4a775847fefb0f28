// Package secretfile checks that a file holding a secret (a private key, a
// token file, the cluster key) is its owner's alone before it is read: one
// that others can read has already given the secret away.
package secretfile

import (
	"fmt"
	"os"
)

// Check returns an error when path cannot be stat'ed, or when its group or
// others have any permission on it; the error names the file and the fix.
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %#o: a secret must be its owner's alone (chmod 600 %s)", path, perm, path)
	}
	return nil
}
