package placementsim

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/placement"
)

// Node is one row of an openb node list.
type Node struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	GPUs      int
	Model     string
}

// Pod is one task: a row of a pod list or of an arrival sequence.
type Pod struct {
	Name      string
	Source    string // the list's task this one clones (itself if original)
	CPUMilli  int64
	MemoryMiB int64
	NumGPU    int
	GPUMilli  int64
	GPUSpec   string
	// QoS is the trace's qos column (LS, BE, Burstable, Guaranteed; empty
	// when the list has none). The over-time simulation maps it to a
	// priority class.
	QoS string
	// Created, Scheduled and Deleted are the trace's times in seconds
	// (pod lists only; 0 when absent).
	Created, Scheduled, Deleted int64
}

// Task converts the pod to what placement scores.
func (p Pod) Task() placement.Task {
	t := placement.Task{CPUMilli: p.CPUMilli, Memory: p.MemoryMiB, GPUs: p.NumGPU, GPUMilli: p.GPUMilli}
	if p.NumGPU == 0 {
		t.GPUMilli = 0
	}
	if p.GPUSpec != "" {
		t.Models = strings.Split(p.GPUSpec, "|")
	}
	return t
}

// GPUMilli is what the pod counts for in the metric (num_gpu * gpu_milli).
func (p Pod) TotalMilli() int64 { return int64(p.NumGPU) * p.GPUMilli }

// readCSV reads a CSV file (gzip when the name ends in .gz) into rows keyed
// by header name.
func readCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read %s: empty file", path)
	}
	head := recs[0]
	rows := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(head))
		for i, h := range head {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		rows = append(rows, m)
	}
	return rows, nil
}

func atoi(path string, row int, m map[string]string, key string) (int64, error) {
	v, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("%s: row %d has no column %q", path, row+2, key)
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: row %d column %s: %w", path, row+2, key, err)
	}
	return n, nil
}

// LoadNodes reads an openb node list (sn,cpu_milli,memory_mib,gpu,model).
func LoadNodes(path string) ([]Node, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(rows))
	for i, m := range rows {
		n := Node{Name: m["sn"], Model: m["model"]}
		if n.CPUMilli, err = atoi(path, i, m, "cpu_milli"); err != nil {
			return nil, err
		}
		if n.MemoryMiB, err = atoi(path, i, m, "memory_mib"); err != nil {
			return nil, err
		}
		g, err := atoi(path, i, m, "gpu")
		if err != nil {
			return nil, err
		}
		n.GPUs = int(g)
		out = append(out, n)
	}
	return out, nil
}

// LoadPods reads a pod list (name,...) or an arrival sequence
// (seq,pod,source_pod,...), in file order.
func LoadPods(path string) ([]Pod, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	out := make([]Pod, 0, len(rows))
	for i, m := range rows {
		p := Pod{Name: m["name"], Source: m["source_pod"], GPUSpec: m["gpu_spec"], QoS: m["qos"]}
		if p.Name == "" {
			p.Name = m["pod"]
		}
		if p.Source == "" {
			p.Source = p.Name
		}
		// The multigpu20 list has no gpu_spec column, and its arrival files
		// carry the source pod's name there instead: that is no model
		// constraint (the reference simulator read the list, which has none).
		if p.GPUSpec == p.Source || p.GPUSpec == p.Name {
			p.GPUSpec = ""
		}
		if p.CPUMilli, err = atoi(path, i, m, "cpu_milli"); err != nil {
			return nil, err
		}
		if p.MemoryMiB, err = atoi(path, i, m, "memory_mib"); err != nil {
			return nil, err
		}
		g, err := atoi(path, i, m, "num_gpu")
		if err != nil {
			return nil, err
		}
		p.NumGPU = int(g)
		if p.GPUMilli, err = atoi(path, i, m, "gpu_milli"); err != nil {
			return nil, err
		}
		if _, ok := m["creation_time"]; ok {
			if p.Created, err = atoi(path, i, m, "creation_time"); err != nil {
				return nil, err
			}
			if p.Scheduled, err = atoi(path, i, m, "scheduled_time"); err != nil {
				return nil, err
			}
			if p.Deleted, err = atoi(path, i, m, "deletion_time"); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// LoadNodeOrder reads the reference's tie-break order (node,sim_name) and
// returns each node's rank (smallest sim_name first).
func LoadNodeOrder(path string) (map[string]int, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	type ns struct{ node, sim string }
	list := make([]ns, 0, len(rows))
	for _, m := range rows {
		list = append(list, ns{m["node"], m["sim_name"]})
	}
	sort.Slice(list, func(i, k int) bool { return list[i].sim < list[k].sim })
	out := make(map[string]int, len(list))
	for i, e := range list {
		out[e.node] = i
	}
	return out, nil
}

// Base is a file's base name without directories and .csv/.gz suffixes
// ("arrivals_openb_pod_list_default_seed42").
func Base(path string) string {
	b := filepath.Base(path)
	b = strings.TrimSuffix(b, ".gz")
	return strings.TrimSuffix(b, ".csv")
}
