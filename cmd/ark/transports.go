package main

// The RDMA verbs transport registers itself with the collective library
// ("rdma": ARK_COLL_TRANSPORT=rdma, ark bench allreduce --transport rdma).
// It loads libibverbs at run time; binaries without it still start.
import _ "github.com/ark-sched/ark/collective/rdma"
