package main

import (
	"os"
	"path/filepath"

	"github.com/ark-sched/ark/scheduler/server"
)

// devClusterKey returns the dev server's cluster key, DATA-DIR/cluster.key,
// created (0600) on first use and kept, so that the checkpoints of earlier
// dev runs stay readable.
func devClusterKey(dataDir string) (*server.ClusterKey, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, "cluster.key")
	if err := server.CreateClusterKeyFile(path); err != nil {
		return nil, err
	}
	return server.LoadClusterKey(path)
}
