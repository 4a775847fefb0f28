package clustersim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// avgEntryBytes is the mean size of the Raft log entries from index from
// on that a stopped server's raft.db still holds (snapshots truncate the
// older ones): each is one encoded raft.Log, as raft-boltdb stores it in
// its "logs" bucket keyed by the big-endian index.
func avgEntryBytes(path string, from uint64) (float64, error) {
	// A copy, opened read-write: bbolt cannot open read-only a file its
	// writer was killed over (it would rewrite the meta page).
	cp, err := copyFile(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(cp)
	db, err := bolt.Open(cp, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var n, total int64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("logs"))
		if b == nil {
			return errors.New("no logs bucket")
		}
		c := b.Cursor()
		start := make([]byte, 8)
		binary.BigEndian.PutUint64(start, from)
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			n++
			total += int64(len(v))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s holds no entries from index %d", path, from)
	}
	return float64(total) / float64(n), nil
}

func copyFile(path string) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(path), "raft-copy-*.db")
	if err != nil {
		return "", err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("copy %s: %w", path, err)
	}
	return out.Name(), nil
}
