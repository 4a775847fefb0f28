// Package inventory discovers what a node offers: its GPUs (through NVML,
// loaded at run time by go-nvml, so the binary runs on machines without
// it), its RDMA NICs (rdmamap: ports, netdevs, PCI address, NUMA node, and
// which NICs are nearest which GPUs), CPU and memory, and builds fake GPUs
// for dev mode and tests from a spec such as "4xH200:141Gi". NVLink
// topology comes with the node agent issue.
package inventory
