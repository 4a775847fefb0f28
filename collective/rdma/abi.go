package rdma

/*
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Mirrors of the libibverbs structures this package touches, laid out as
// rdma-core's stable ABI (symbol version IBVERBS_1.1) lays them out in
// <infiniband/verbs.h>. No verbs header is needed to build; TestABILayout
// compiles the real header where it is installed and compares every size,
// offset and constant listed in ark_abi[] below. Structures the library
// allocates (context, cq, qp) are mirrored only up to the last field read.

struct ark_ibv_cq;
struct ark_ibv_qp;
struct ark_ibv_send_wr;
struct ark_ibv_recv_wr;
struct ark_ibv_wc;

// struct ibv_context_ops: 32 function pointers. ibv_poll_cq, ibv_post_send
// and ibv_post_recv are static inline in verbs.h and call through this table.
struct ark_ibv_context_ops {
	void *compat_query_device, *compat_query_port, *compat_alloc_pd, *compat_dealloc_pd;
	void *compat_reg_mr, *compat_rereg_mr, *compat_dereg_mr;
	void *alloc_mw, *bind_mw, *dealloc_mw;
	void *compat_create_cq;
	int (*poll_cq)(struct ark_ibv_cq *cq, int num_entries, struct ark_ibv_wc *wc);
	void *req_notify_cq, *compat_cq_event, *compat_resize_cq, *compat_destroy_cq;
	void *compat_create_srq, *compat_modify_srq, *compat_query_srq, *compat_destroy_srq;
	void *post_srq_recv;
	void *compat_create_qp, *compat_query_qp, *compat_modify_qp, *compat_destroy_qp;
	int (*post_send)(struct ark_ibv_qp *qp, struct ark_ibv_send_wr *wr, struct ark_ibv_send_wr **bad_wr);
	int (*post_recv)(struct ark_ibv_qp *qp, struct ark_ibv_recv_wr *wr, struct ark_ibv_recv_wr **bad_wr);
	void *compat_create_ah, *compat_destroy_ah, *compat_attach_mcast, *compat_detach_mcast;
	void *compat_async_event;
};

struct ark_ibv_context { // prefix
	void *device;
	struct ark_ibv_context_ops ops;
	int cmd_fd;
};

struct ark_ibv_cq { // prefix
	struct ark_ibv_context *context;
};

struct ark_ibv_qp { // prefix
	struct ark_ibv_context *context;
	void *qp_context;
	void *pd;
	struct ark_ibv_cq *send_cq;
	struct ark_ibv_cq *recv_cq;
	void *srq;
	uint32_t handle;
	uint32_t qp_num;
};

struct ark_ibv_mr {
	struct ark_ibv_context *context;
	void *pd;
	void *addr;
	size_t length;
	uint32_t handle;
	uint32_t lkey;
	uint32_t rkey;
};

union ark_ibv_gid {
	uint8_t raw[16];
	struct {
		uint64_t subnet_prefix; // big-endian
		uint64_t interface_id;  // big-endian
	} global;
};

struct ark_ibv_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

struct ark_ibv_send_wr {
	uint64_t wr_id;
	struct ark_ibv_send_wr *next;
	struct ark_ibv_sge *sg_list;
	int num_sge;
	uint32_t opcode;       // enum ibv_wr_opcode
	unsigned int send_flags;
	uint32_t imm_data;     // anonymous union { __be32 imm_data; uint32_t invalidate_rkey; }
	union {
		struct { uint64_t remote_addr; uint32_t rkey; } rdma;
		struct { uint64_t remote_addr; uint64_t compare_add; uint64_t swap; uint32_t rkey; } atomic;
		struct { void *ah; uint32_t remote_qpn; uint32_t remote_qkey; } ud;
	} wr;
	union {
		struct { uint32_t remote_srqn; } xrc;
	} qp_type;
	union { // anonymous in verbs.h
		struct {
			void *mw;
			uint32_t rkey;
			struct { void *mr; uint64_t addr; uint64_t length; unsigned int mw_access_flags; } bind_info;
		} bind_mw;
		struct { void *hdr; uint16_t hdr_sz; uint16_t mss; } tso;
	} ext;
};

struct ark_ibv_recv_wr {
	uint64_t wr_id;
	struct ark_ibv_recv_wr *next;
	struct ark_ibv_sge *sg_list;
	int num_sge;
};

struct ark_ibv_wc {
	uint64_t wr_id;
	uint32_t status;       // enum ibv_wc_status
	uint32_t opcode;       // enum ibv_wc_opcode
	uint32_t vendor_err;
	uint32_t byte_len;
	uint32_t imm_data;     // anonymous union, network byte order
	uint32_t qp_num;
	uint32_t src_qp;
	unsigned int wc_flags;
	uint16_t pkey_index;
	uint16_t slid;
	uint8_t sl;
	uint8_t dlid_path_bits;
};

struct ark_ibv_qp_cap {
	uint32_t max_send_wr, max_recv_wr, max_send_sge, max_recv_sge, max_inline_data;
};

struct ark_ibv_qp_init_attr {
	void *qp_context;
	struct ark_ibv_cq *send_cq;
	struct ark_ibv_cq *recv_cq;
	void *srq;
	struct ark_ibv_qp_cap cap;
	uint32_t qp_type;      // enum ibv_qp_type
	int sq_sig_all;
};

struct ark_ibv_global_route {
	union ark_ibv_gid dgid;
	uint32_t flow_label;
	uint8_t sgid_index;
	uint8_t hop_limit;
	uint8_t traffic_class;
};

struct ark_ibv_ah_attr {
	struct ark_ibv_global_route grh;
	uint16_t dlid;
	uint8_t sl;
	uint8_t src_path_bits;
	uint8_t static_rate;
	uint8_t is_global;
	uint8_t port_num;
};

struct ark_ibv_qp_attr {
	uint32_t qp_state, cur_qp_state, path_mtu, path_mig_state; // enums
	uint32_t qkey, rq_psn, sq_psn, dest_qp_num;
	unsigned int qp_access_flags;
	struct ark_ibv_qp_cap cap;
	struct ark_ibv_ah_attr ah_attr;
	struct ark_ibv_ah_attr alt_ah_attr;
	uint16_t pkey_index, alt_pkey_index;
	uint8_t en_sqd_async_notify, sq_draining, max_rd_atomic, max_dest_rd_atomic;
	uint8_t min_rnr_timer, port_num, timeout, retry_cnt, rnr_retry, alt_port_num, alt_timeout;
	uint32_t rate_limit;
};

struct ark_ibv_port_attr {
	uint32_t state, max_mtu, active_mtu; // enums
	int gid_tbl_len;
	uint32_t port_cap_flags, max_msg_sz, bad_pkey_cntr, qkey_viol_cntr;
	uint16_t pkey_tbl_len, lid, sm_lid;
	uint8_t lmc, max_vl_num, sm_sl, subnet_timeout, init_type_reply, active_width, active_speed, phys_state, link_layer, flags;
	uint16_t port_cap_flags2;
};

enum {
	ARK_IBV_QPT_RC = 2,
	ARK_IBV_QPS_RESET = 0, ARK_IBV_QPS_INIT = 1, ARK_IBV_QPS_RTR = 2, ARK_IBV_QPS_RTS = 3, ARK_IBV_QPS_ERR = 6,
	ARK_IBV_WR_RDMA_WRITE = 0, ARK_IBV_WR_RDMA_WRITE_WITH_IMM = 1,
	ARK_IBV_SEND_SIGNALED = 2,
	ARK_IBV_WC_SUCCESS = 0, ARK_IBV_WC_RDMA_WRITE = 1, ARK_IBV_WC_RECV_RDMA_WITH_IMM = 129,
	ARK_IBV_WC_WITH_IMM = 2,
	ARK_IBV_ACCESS_LOCAL_WRITE = 1, ARK_IBV_ACCESS_REMOTE_WRITE = 2,
	ARK_IBV_QP_STATE = 1 << 0, ARK_IBV_QP_ACCESS_FLAGS = 1 << 3, ARK_IBV_QP_PKEY_INDEX = 1 << 4,
	ARK_IBV_QP_PORT = 1 << 5, ARK_IBV_QP_AV = 1 << 7, ARK_IBV_QP_PATH_MTU = 1 << 8,
	ARK_IBV_QP_TIMEOUT = 1 << 9, ARK_IBV_QP_RETRY_CNT = 1 << 10, ARK_IBV_QP_RNR_RETRY = 1 << 11,
	ARK_IBV_QP_RQ_PSN = 1 << 12, ARK_IBV_QP_MAX_QP_RD_ATOMIC = 1 << 13, ARK_IBV_QP_MIN_RNR_TIMER = 1 << 15,
	ARK_IBV_QP_SQ_PSN = 1 << 16, ARK_IBV_QP_MAX_DEST_RD_ATOMIC = 1 << 17, ARK_IBV_QP_DEST_QPN = 1 << 20,
	ARK_IBV_PORT_ACTIVE = 4,
	ARK_IBV_LINK_LAYER_INFINIBAND = 1, ARK_IBV_LINK_LAYER_ETHERNET = 2,
	ARK_IBV_MTU_256 = 1, ARK_IBV_MTU_1024 = 3, ARK_IBV_MTU_4096 = 5,
};

// ark_abi lists what TestABILayout checks: the C type or "const", the
// member (empty for sizeof) or constant name as verbs.h spells it, and the
// mirror's value.
struct ark_abi_entry { const char *type, *member; long value; };
#define ARK_SIZE(rt, mt) { rt, "", (long)sizeof(mt) }
#define ARK_OFF(rt, rf, mt, mf) { rt, rf, (long)offsetof(mt, mf) }
#define ARK_CONST(name) { "const", #name, (long)ARK_##name }
static const struct ark_abi_entry ark_abi[] = {
	ARK_SIZE("struct ibv_context_ops", struct ark_ibv_context_ops),
	ARK_OFF("struct ibv_context_ops", "poll_cq", struct ark_ibv_context_ops, poll_cq),
	ARK_OFF("struct ibv_context_ops", "post_send", struct ark_ibv_context_ops, post_send),
	ARK_OFF("struct ibv_context_ops", "post_recv", struct ark_ibv_context_ops, post_recv),
	ARK_OFF("struct ibv_context", "ops", struct ark_ibv_context, ops),
	ARK_OFF("struct ibv_context", "cmd_fd", struct ark_ibv_context, cmd_fd),
	ARK_OFF("struct ibv_cq", "context", struct ark_ibv_cq, context),
	ARK_OFF("struct ibv_qp", "context", struct ark_ibv_qp, context),
	ARK_OFF("struct ibv_qp", "qp_num", struct ark_ibv_qp, qp_num),
	ARK_SIZE("struct ibv_mr", struct ark_ibv_mr),
	ARK_OFF("struct ibv_mr", "addr", struct ark_ibv_mr, addr),
	ARK_OFF("struct ibv_mr", "length", struct ark_ibv_mr, length),
	ARK_OFF("struct ibv_mr", "lkey", struct ark_ibv_mr, lkey),
	ARK_OFF("struct ibv_mr", "rkey", struct ark_ibv_mr, rkey),
	ARK_SIZE("union ibv_gid", union ark_ibv_gid),
	ARK_SIZE("struct ibv_sge", struct ark_ibv_sge),
	ARK_OFF("struct ibv_sge", "addr", struct ark_ibv_sge, addr),
	ARK_OFF("struct ibv_sge", "length", struct ark_ibv_sge, length),
	ARK_OFF("struct ibv_sge", "lkey", struct ark_ibv_sge, lkey),
	ARK_SIZE("struct ibv_send_wr", struct ark_ibv_send_wr),
	ARK_OFF("struct ibv_send_wr", "wr_id", struct ark_ibv_send_wr, wr_id),
	ARK_OFF("struct ibv_send_wr", "next", struct ark_ibv_send_wr, next),
	ARK_OFF("struct ibv_send_wr", "sg_list", struct ark_ibv_send_wr, sg_list),
	ARK_OFF("struct ibv_send_wr", "num_sge", struct ark_ibv_send_wr, num_sge),
	ARK_OFF("struct ibv_send_wr", "opcode", struct ark_ibv_send_wr, opcode),
	ARK_OFF("struct ibv_send_wr", "send_flags", struct ark_ibv_send_wr, send_flags),
	ARK_OFF("struct ibv_send_wr", "imm_data", struct ark_ibv_send_wr, imm_data),
	ARK_OFF("struct ibv_send_wr", "wr.rdma.remote_addr", struct ark_ibv_send_wr, wr.rdma.remote_addr),
	ARK_OFF("struct ibv_send_wr", "wr.rdma.rkey", struct ark_ibv_send_wr, wr.rdma.rkey),
	ARK_OFF("struct ibv_send_wr", "qp_type", struct ark_ibv_send_wr, qp_type),
	ARK_OFF("struct ibv_send_wr", "bind_mw", struct ark_ibv_send_wr, ext.bind_mw),
	ARK_SIZE("struct ibv_recv_wr", struct ark_ibv_recv_wr),
	ARK_OFF("struct ibv_recv_wr", "sg_list", struct ark_ibv_recv_wr, sg_list),
	ARK_OFF("struct ibv_recv_wr", "num_sge", struct ark_ibv_recv_wr, num_sge),
	ARK_SIZE("struct ibv_wc", struct ark_ibv_wc),
	ARK_OFF("struct ibv_wc", "status", struct ark_ibv_wc, status),
	ARK_OFF("struct ibv_wc", "opcode", struct ark_ibv_wc, opcode),
	ARK_OFF("struct ibv_wc", "byte_len", struct ark_ibv_wc, byte_len),
	ARK_OFF("struct ibv_wc", "imm_data", struct ark_ibv_wc, imm_data),
	ARK_OFF("struct ibv_wc", "wc_flags", struct ark_ibv_wc, wc_flags),
	ARK_OFF("struct ibv_wc", "dlid_path_bits", struct ark_ibv_wc, dlid_path_bits),
	ARK_SIZE("struct ibv_qp_cap", struct ark_ibv_qp_cap),
	ARK_SIZE("struct ibv_qp_init_attr", struct ark_ibv_qp_init_attr),
	ARK_OFF("struct ibv_qp_init_attr", "send_cq", struct ark_ibv_qp_init_attr, send_cq),
	ARK_OFF("struct ibv_qp_init_attr", "recv_cq", struct ark_ibv_qp_init_attr, recv_cq),
	ARK_OFF("struct ibv_qp_init_attr", "cap", struct ark_ibv_qp_init_attr, cap),
	ARK_OFF("struct ibv_qp_init_attr", "qp_type", struct ark_ibv_qp_init_attr, qp_type),
	ARK_OFF("struct ibv_qp_init_attr", "sq_sig_all", struct ark_ibv_qp_init_attr, sq_sig_all),
	ARK_SIZE("struct ibv_global_route", struct ark_ibv_global_route),
	ARK_SIZE("struct ibv_ah_attr", struct ark_ibv_ah_attr),
	ARK_OFF("struct ibv_ah_attr", "dlid", struct ark_ibv_ah_attr, dlid),
	ARK_OFF("struct ibv_ah_attr", "is_global", struct ark_ibv_ah_attr, is_global),
	ARK_OFF("struct ibv_ah_attr", "port_num", struct ark_ibv_ah_attr, port_num),
	ARK_SIZE("struct ibv_qp_attr", struct ark_ibv_qp_attr),
	ARK_OFF("struct ibv_qp_attr", "path_mtu", struct ark_ibv_qp_attr, path_mtu),
	ARK_OFF("struct ibv_qp_attr", "rq_psn", struct ark_ibv_qp_attr, rq_psn),
	ARK_OFF("struct ibv_qp_attr", "sq_psn", struct ark_ibv_qp_attr, sq_psn),
	ARK_OFF("struct ibv_qp_attr", "dest_qp_num", struct ark_ibv_qp_attr, dest_qp_num),
	ARK_OFF("struct ibv_qp_attr", "qp_access_flags", struct ark_ibv_qp_attr, qp_access_flags),
	ARK_OFF("struct ibv_qp_attr", "ah_attr", struct ark_ibv_qp_attr, ah_attr),
	ARK_OFF("struct ibv_qp_attr", "ah_attr.grh.dgid", struct ark_ibv_qp_attr, ah_attr.grh.dgid),
	ARK_OFF("struct ibv_qp_attr", "ah_attr.grh.sgid_index", struct ark_ibv_qp_attr, ah_attr.grh.sgid_index),
	ARK_OFF("struct ibv_qp_attr", "ah_attr.grh.hop_limit", struct ark_ibv_qp_attr, ah_attr.grh.hop_limit),
	ARK_OFF("struct ibv_qp_attr", "ah_attr.grh.traffic_class", struct ark_ibv_qp_attr, ah_attr.grh.traffic_class),
	ARK_OFF("struct ibv_qp_attr", "alt_ah_attr", struct ark_ibv_qp_attr, alt_ah_attr),
	ARK_OFF("struct ibv_qp_attr", "pkey_index", struct ark_ibv_qp_attr, pkey_index),
	ARK_OFF("struct ibv_qp_attr", "max_rd_atomic", struct ark_ibv_qp_attr, max_rd_atomic),
	ARK_OFF("struct ibv_qp_attr", "max_dest_rd_atomic", struct ark_ibv_qp_attr, max_dest_rd_atomic),
	ARK_OFF("struct ibv_qp_attr", "min_rnr_timer", struct ark_ibv_qp_attr, min_rnr_timer),
	ARK_OFF("struct ibv_qp_attr", "port_num", struct ark_ibv_qp_attr, port_num),
	ARK_OFF("struct ibv_qp_attr", "timeout", struct ark_ibv_qp_attr, timeout),
	ARK_OFF("struct ibv_qp_attr", "retry_cnt", struct ark_ibv_qp_attr, retry_cnt),
	ARK_OFF("struct ibv_qp_attr", "rnr_retry", struct ark_ibv_qp_attr, rnr_retry),
	ARK_OFF("struct ibv_qp_attr", "rate_limit", struct ark_ibv_qp_attr, rate_limit),
	ARK_SIZE("struct ibv_port_attr", struct ark_ibv_port_attr),
	ARK_OFF("struct ibv_port_attr", "active_mtu", struct ark_ibv_port_attr, active_mtu),
	ARK_OFF("struct ibv_port_attr", "gid_tbl_len", struct ark_ibv_port_attr, gid_tbl_len),
	ARK_OFF("struct ibv_port_attr", "lid", struct ark_ibv_port_attr, lid),
	ARK_OFF("struct ibv_port_attr", "link_layer", struct ark_ibv_port_attr, link_layer),
	ARK_OFF("struct ibv_port_attr", "port_cap_flags2", struct ark_ibv_port_attr, port_cap_flags2),
	ARK_CONST(IBV_QPT_RC),
	ARK_CONST(IBV_QPS_RESET), ARK_CONST(IBV_QPS_INIT), ARK_CONST(IBV_QPS_RTR), ARK_CONST(IBV_QPS_RTS), ARK_CONST(IBV_QPS_ERR),
	ARK_CONST(IBV_WR_RDMA_WRITE), ARK_CONST(IBV_WR_RDMA_WRITE_WITH_IMM),
	ARK_CONST(IBV_SEND_SIGNALED),
	ARK_CONST(IBV_WC_SUCCESS), ARK_CONST(IBV_WC_RDMA_WRITE), ARK_CONST(IBV_WC_RECV_RDMA_WITH_IMM), ARK_CONST(IBV_WC_WITH_IMM),
	ARK_CONST(IBV_ACCESS_LOCAL_WRITE), ARK_CONST(IBV_ACCESS_REMOTE_WRITE),
	ARK_CONST(IBV_QP_STATE), ARK_CONST(IBV_QP_ACCESS_FLAGS), ARK_CONST(IBV_QP_PKEY_INDEX), ARK_CONST(IBV_QP_PORT),
	ARK_CONST(IBV_QP_AV), ARK_CONST(IBV_QP_PATH_MTU), ARK_CONST(IBV_QP_TIMEOUT), ARK_CONST(IBV_QP_RETRY_CNT),
	ARK_CONST(IBV_QP_RNR_RETRY), ARK_CONST(IBV_QP_RQ_PSN), ARK_CONST(IBV_QP_MAX_QP_RD_ATOMIC),
	ARK_CONST(IBV_QP_MIN_RNR_TIMER), ARK_CONST(IBV_QP_SQ_PSN), ARK_CONST(IBV_QP_MAX_DEST_RD_ATOMIC), ARK_CONST(IBV_QP_DEST_QPN),
	ARK_CONST(IBV_PORT_ACTIVE), ARK_CONST(IBV_LINK_LAYER_INFINIBAND), ARK_CONST(IBV_LINK_LAYER_ETHERNET),
	ARK_CONST(IBV_MTU_256), ARK_CONST(IBV_MTU_1024), ARK_CONST(IBV_MTU_4096),
};
static int ark_abi_len(void) { return sizeof(ark_abi) / sizeof(ark_abi[0]); }
static const char *ark_abi_type(int i) { return ark_abi[i].type; }
static const char *ark_abi_member(int i) { return ark_abi[i].member; }
static long ark_abi_value(int i) { return ark_abi[i].value; }

// Exported (non-inline) entry points, called through pointers from dlsym.
typedef void *(*ark_alloc_pd_fn)(void *ctx);
typedef int (*ark_dealloc_pd_fn)(void *pd);
typedef struct ark_ibv_mr *(*ark_reg_mr_fn)(void *pd, void *addr, size_t length, int access);
typedef int (*ark_dereg_mr_fn)(struct ark_ibv_mr *mr);
typedef struct ark_ibv_cq *(*ark_create_cq_fn)(void *ctx, int cqe, void *cq_context, void *channel, int comp_vector);
typedef int (*ark_destroy_cq_fn)(struct ark_ibv_cq *cq);
typedef struct ark_ibv_qp *(*ark_create_qp_fn)(void *pd, struct ark_ibv_qp_init_attr *attr);
typedef int (*ark_modify_qp_fn)(struct ark_ibv_qp *qp, struct ark_ibv_qp_attr *attr, int mask);
typedef int (*ark_destroy_qp_fn)(struct ark_ibv_qp *qp);
// The exported ibv_query_port takes struct _compat_ibv_port_attr (today's
// struct without port_cap_flags2) and writes at most that many bytes; a
// zeroed full-size struct is a safe buffer.
typedef int (*ark_query_port_fn)(void *ctx, uint8_t port, struct ark_ibv_port_attr *attr);
typedef int (*ark_query_gid_fn)(void *ctx, uint8_t port, int index, union ark_ibv_gid *gid);

static void *ark_alloc_pd(void *f, void *ctx) { return ((ark_alloc_pd_fn)f)(ctx); }
static int ark_dealloc_pd(void *f, void *pd) { return ((ark_dealloc_pd_fn)f)(pd); }
static struct ark_ibv_mr *ark_reg_mr(void *f, void *pd, void *addr, size_t len) {
	return ((ark_reg_mr_fn)f)(pd, addr, len, ARK_IBV_ACCESS_LOCAL_WRITE | ARK_IBV_ACCESS_REMOTE_WRITE);
}
static int ark_dereg_mr(void *f, struct ark_ibv_mr *mr) { return ((ark_dereg_mr_fn)f)(mr); }
static uint32_t ark_mr_lkey(struct ark_ibv_mr *mr) { return mr->lkey; }
static uint32_t ark_mr_rkey(struct ark_ibv_mr *mr) { return mr->rkey; }
static struct ark_ibv_cq *ark_create_cq(void *f, void *ctx, int cqe) { return ((ark_create_cq_fn)f)(ctx, cqe, NULL, NULL, 0); }
static int ark_destroy_cq(void *f, struct ark_ibv_cq *cq) { return ((ark_destroy_cq_fn)f)(cq); }
static struct ark_ibv_qp *ark_create_qp(void *f, void *pd, struct ark_ibv_cq *scq, struct ark_ibv_cq *rcq, int send_wr, int recv_wr) {
	struct ark_ibv_qp_init_attr a;
	memset(&a, 0, sizeof a);
	a.send_cq = scq;
	a.recv_cq = rcq;
	a.cap.max_send_wr = send_wr;
	a.cap.max_recv_wr = recv_wr;
	a.cap.max_send_sge = 1;
	a.cap.max_recv_sge = 1;
	a.qp_type = ARK_IBV_QPT_RC;
	return ((ark_create_qp_fn)f)(pd, &a);
}
static uint32_t ark_qp_num(struct ark_ibv_qp *qp) { return qp->qp_num; }
static int ark_destroy_qp(void *f, struct ark_ibv_qp *qp) { return ((ark_destroy_qp_fn)f)(qp); }

static int ark_qp_init(void *f, struct ark_ibv_qp *qp, int port) {
	struct ark_ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = ARK_IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = port;
	a.qp_access_flags = ARK_IBV_ACCESS_LOCAL_WRITE | ARK_IBV_ACCESS_REMOTE_WRITE;
	return ((ark_modify_qp_fn)f)(qp, &a, ARK_IBV_QP_STATE | ARK_IBV_QP_PKEY_INDEX | ARK_IBV_QP_PORT | ARK_IBV_QP_ACCESS_FLAGS);
}

static int ark_qp_rtr(void *f, struct ark_ibv_qp *qp, int mtu, uint32_t dest_qpn, uint32_t rq_psn,
		int port, uint16_t dlid, int global, const uint8_t *dgid, int sgid_index, int traffic_class) {
	struct ark_ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = ARK_IBV_QPS_RTR;
	a.path_mtu = mtu;
	a.dest_qp_num = dest_qpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.port_num = port;
	a.ah_attr.dlid = dlid;
	if (global) {
		a.ah_attr.is_global = 1;
		memcpy(a.ah_attr.grh.dgid.raw, dgid, 16);
		a.ah_attr.grh.sgid_index = sgid_index;
		a.ah_attr.grh.hop_limit = 255;
		a.ah_attr.grh.traffic_class = traffic_class;
	}
	return ((ark_modify_qp_fn)f)(qp, &a, ARK_IBV_QP_STATE | ARK_IBV_QP_AV | ARK_IBV_QP_PATH_MTU | ARK_IBV_QP_DEST_QPN |
		ARK_IBV_QP_RQ_PSN | ARK_IBV_QP_MAX_DEST_RD_ATOMIC | ARK_IBV_QP_MIN_RNR_TIMER);
}

static int ark_qp_rts(void *f, struct ark_ibv_qp *qp, uint32_t sq_psn, int timeout) {
	struct ark_ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = ARK_IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	a.timeout = timeout;
	a.retry_cnt = 7;
	a.rnr_retry = 7; // retry forever on receiver-not-ready
	a.max_rd_atomic = 1;
	return ((ark_modify_qp_fn)f)(qp, &a, ARK_IBV_QP_STATE | ARK_IBV_QP_SQ_PSN | ARK_IBV_QP_TIMEOUT |
		ARK_IBV_QP_RETRY_CNT | ARK_IBV_QP_RNR_RETRY | ARK_IBV_QP_MAX_QP_RD_ATOMIC);
}

static int ark_query_port(void *f, void *ctx, int port, struct ark_ibv_port_attr *out) {
	memset(out, 0, sizeof *out);
	return ((ark_query_port_fn)f)(ctx, port, out);
}

static int ark_query_gid(void *f, void *ctx, int port, int index, uint8_t *out) {
	union ark_ibv_gid g;
	memset(&g, 0, sizeof g);
	int rc = ((ark_query_gid_fn)f)(ctx, port, index, &g);
	memcpy(out, g.raw, 16);
	return rc;
}

// ark_hton32 converts between host and network (big-endian) byte order,
// both ways, on either endianness.
static uint32_t ark_hton32(uint32_t x) {
	const uint8_t *b = (const uint8_t *)&x;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
}

// The inline verbs: one signaled RDMA WRITE (WITH_IMM when with_imm), one
// receive without scatter entries (a WRITE_WITH_IMM consumes one and
// writes nothing to it), and a poll that copies out what Go needs.
static int ark_post_write(struct ark_ibv_qp *qp, uint64_t wr_id, uint64_t laddr, uint32_t len, uint32_t lkey,
		uint64_t raddr, uint32_t rkey, uint32_t imm, int with_imm) {
	struct ark_ibv_sge sge = { .addr = laddr, .length = len, .lkey = lkey };
	struct ark_ibv_send_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wr_id;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = with_imm ? ARK_IBV_WR_RDMA_WRITE_WITH_IMM : ARK_IBV_WR_RDMA_WRITE;
	wr.send_flags = ARK_IBV_SEND_SIGNALED;
	wr.imm_data = ark_hton32(imm);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return qp->context->ops.post_send(qp, &wr, &bad);
}

static int ark_post_recv(struct ark_ibv_qp *qp, uint64_t wr_id) {
	struct ark_ibv_recv_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wr_id;
	return qp->context->ops.post_recv(qp, &wr, &bad);
}

struct ark_wc_out { uint64_t wr_id; uint32_t status, opcode, byte_len, imm, flags, vendor_err; };

static int ark_poll_cq(struct ark_ibv_cq *cq, int n, struct ark_wc_out *out) {
	struct ark_ibv_wc wc[16];
	if (n > 16) n = 16;
	int got = cq->context->ops.poll_cq(cq, n, wc);
	for (int i = 0; i < got; i++) {
		out[i].wr_id = wc[i].wr_id;
		out[i].status = wc[i].status;
		out[i].opcode = wc[i].opcode;
		out[i].byte_len = wc[i].byte_len;
		out[i].imm = ark_hton32(wc[i].imm_data);
		out[i].flags = wc[i].wc_flags;
		out[i].vendor_err = wc[i].vendor_err;
	}
	return got;
}

static void *ark_alloc(size_t n) {
	void *p = NULL;
	if (posix_memalign(&p, 4096, n) != 0) return NULL;
	memset(p, 0, n);
	return p;
}
*/
import "C"

import (
	"unsafe"
)

// abiEntry is one line of the mirror's layout table.
type abiEntry struct {
	Type   string // "struct ibv_wc", "union ibv_gid" or "const"
	Member string // field path, "" for sizeof, or the constant's name
	Value  int64
}

// abiLayout returns the sizes, offsets and constants of the mirrored ABI.
func abiLayout() []abiEntry {
	n := int(C.ark_abi_len())
	out := make([]abiEntry, n)
	for i := range n {
		out[i] = abiEntry{
			Type:   C.GoString(C.ark_abi_type(C.int(i))),
			Member: C.GoString(C.ark_abi_member(C.int(i))),
			Value:  int64(C.ark_abi_value(C.int(i))),
		}
	}
	return out
}

// Values Go needs from the enums above.
const (
	linkLayerIB       = C.ARK_IBV_LINK_LAYER_INFINIBAND
	linkLayerEthernet = C.ARK_IBV_LINK_LAYER_ETHERNET
	portActive        = C.ARK_IBV_PORT_ACTIVE
	wcSuccess         = C.ARK_IBV_WC_SUCCESS
	wcRDMAWrite       = C.ARK_IBV_WC_RDMA_WRITE
	wcRecvRDMAImm     = C.ARK_IBV_WC_RECV_RDMA_WITH_IMM
)

// portAttr is what Go reads of struct ibv_port_attr.
type portAttr struct {
	state, activeMTU uint32
	gidTblLen        int
	lid              uint16
	linkLayer        uint8
}

func (l *Lib) queryPort(ctx unsafe.Pointer, port int) (portAttr, error) {
	var a C.struct_ark_ibv_port_attr
	if rc, errno := C.ark_query_port(l.queryPortFn, ctx, C.int(port), &a); rc != 0 {
		return portAttr{}, errnoOr(errno, int(rc))
	}
	return portAttr{
		state: uint32(a.state), activeMTU: uint32(a.active_mtu), gidTblLen: int(a.gid_tbl_len),
		lid: uint16(a.lid), linkLayer: uint8(a.link_layer),
	}, nil
}

func (l *Lib) queryGID(ctx unsafe.Pointer, port, index int) ([16]byte, error) {
	var g [16]byte
	if rc, errno := C.ark_query_gid(l.queryGIDFn, ctx, C.int(port), C.int(index), (*C.uint8_t)(unsafe.Pointer(&g[0]))); rc != 0 {
		return g, errnoOr(errno, int(rc))
	}
	return g, nil
}

// verbsQP is a real RC queue pair with its two completion queues and one
// registered region (C memory, so Go's pointer rules do not apply).
type verbsQP struct {
	lib        *Lib
	port       int
	pd         unsafe.Pointer
	scq, rcq   *C.struct_ark_ibv_cq
	qp         *C.struct_ark_ibv_qp
	mr         *C.struct_ark_ibv_mr
	buf        unsafe.Pointer
	size       int
	lkey, rkey uint32
}

func (l *Lib) newQP(ctx, pd unsafe.Pointer, port, memBytes, sendDepth, recvDepth int) (_ *verbsQP, err error) {
	q := &verbsQP{lib: l, port: port, pd: pd, size: memBytes}
	defer func() {
		if err != nil {
			q.destroy()
		}
	}()
	if q.buf = C.ark_alloc(C.size_t(memBytes)); q.buf == nil {
		return nil, errorf("allocate %d bytes", memBytes)
	}
	mr, errno := C.ark_reg_mr(l.regMR, pd, q.buf, C.size_t(memBytes))
	if mr == nil {
		return nil, errorf("ibv_reg_mr %d bytes: %v", memBytes, errnoOr(errno, -1))
	}
	q.mr, q.lkey, q.rkey = mr, uint32(C.ark_mr_lkey(mr)), uint32(C.ark_mr_rkey(mr))
	if q.scq, errno = C.ark_create_cq(l.createCQ, ctx, C.int(sendDepth)); q.scq == nil {
		return nil, errorf("ibv_create_cq: %v", errnoOr(errno, -1))
	}
	if q.rcq, errno = C.ark_create_cq(l.createCQ, ctx, C.int(recvDepth)); q.rcq == nil {
		return nil, errorf("ibv_create_cq: %v", errnoOr(errno, -1))
	}
	if q.qp, errno = C.ark_create_qp(l.createQP, pd, q.scq, q.rcq, C.int(sendDepth), C.int(recvDepth)); q.qp == nil {
		return nil, errorf("ibv_create_qp (RC, %d send, %d recv): %v", sendDepth, recvDepth, errnoOr(errno, -1))
	}
	if rc, errno := C.ark_qp_init(l.modifyQP, q.qp, C.int(port)); rc != 0 {
		return nil, errorf("ibv_modify_qp INIT: %v", errnoOr(errno, int(rc)))
	}
	return q, nil
}

func (q *verbsQP) num() uint32 { return uint32(C.ark_qp_num(q.qp)) }
func (q *verbsQP) mem() []byte { return unsafe.Slice((*byte)(q.buf), q.size) }
func (q *verbsQP) base() uint64 {
	return uint64(uintptr(q.buf))
}
func (q *verbsQP) key() uint32 { return q.rkey }

func (q *verbsQP) connect(self portInfo, peer *wireInfo, tc, timeout int) error {
	mtu := min(self.MTU, peer.MTU)
	global := 0
	if self.LinkLayer == linkLayerEthernet {
		global = 1
	}
	gid := peer.GID
	dgid := (*C.uint8_t)(unsafe.Pointer(&gid[0]))
	if rc, errno := C.ark_qp_rtr(q.lib.modifyQP, q.qp, C.int(mtu), C.uint32_t(peer.QPN), C.uint32_t(peer.PSN),
		C.int(q.port), C.uint16_t(peer.LID), C.int(global), dgid, C.int(self.GIDIndex), C.int(tc)); rc != 0 {
		return errorf("ibv_modify_qp RTR (peer qpn %d): %v", peer.QPN, errnoOr(errno, int(rc)))
	}
	if rc, errno := C.ark_qp_rts(q.lib.modifyQP, q.qp, C.uint32_t(self.PSN), C.int(timeout)); rc != 0 {
		return errorf("ibv_modify_qp RTS: %v", errnoOr(errno, int(rc)))
	}
	return nil
}

func (q *verbsQP) postWrite(id uint64, off, n int, raddr uint64, rkey uint32, imm uint32, withImm bool) error {
	w := 0
	if withImm {
		w = 1
	}
	if rc := C.ark_post_write(q.qp, C.uint64_t(id), C.uint64_t(q.base()+uint64(off)), C.uint32_t(n), C.uint32_t(q.lkey),
		C.uint64_t(raddr), C.uint32_t(rkey), C.uint32_t(imm), C.int(w)); rc != 0 {
		return errorf("ibv_post_send: %v", errnoOr(nil, int(rc)))
	}
	return nil
}

func (q *verbsQP) postRecv(id uint64) error {
	if rc := C.ark_post_recv(q.qp, C.uint64_t(id)); rc != 0 {
		return errorf("ibv_post_recv: %v", errnoOr(nil, int(rc)))
	}
	return nil
}

func (q *verbsQP) poll(cq *C.struct_ark_ibv_cq, out []completion) (int, error) {
	var wcs [16]C.struct_ark_wc_out
	n := min(len(out), len(wcs))
	got := int(C.ark_poll_cq(cq, C.int(n), &wcs[0]))
	if got < 0 {
		return 0, errorf("ibv_poll_cq: %d", got)
	}
	for i := range got {
		w := &wcs[i]
		out[i] = completion{id: uint64(w.wr_id), status: uint32(w.status), opcode: uint32(w.opcode),
			imm: uint32(w.imm), vendor: uint32(w.vendor_err)}
	}
	return got, nil
}

func (q *verbsQP) pollSend(out []completion) (int, error) { return q.poll(q.scq, out) }
func (q *verbsQP) pollRecv(out []completion) (int, error) { return q.poll(q.rcq, out) }

// destroy releases in reverse order of creation; safe on a partial qp.
func (q *verbsQP) destroy() error {
	var first error
	note := func(what string, rc C.int) {
		if rc != 0 && first == nil {
			first = errorf("%s: %d", what, int(rc))
		}
	}
	if q.qp != nil {
		note("ibv_destroy_qp", C.ark_destroy_qp(q.lib.destroyQP, q.qp))
		q.qp = nil
	}
	for _, cq := range []**C.struct_ark_ibv_cq{&q.scq, &q.rcq} {
		if *cq != nil {
			note("ibv_destroy_cq", C.ark_destroy_cq(q.lib.destroyCQ, *cq))
			*cq = nil
		}
	}
	if q.mr != nil {
		note("ibv_dereg_mr", C.ark_dereg_mr(q.lib.deregMR, q.mr))
		q.mr = nil
	}
	if q.buf != nil {
		C.free(q.buf)
		q.buf = nil
	}
	return first
}

func (l *Lib) allocPD(ctx unsafe.Pointer) (unsafe.Pointer, error) {
	pd, errno := C.ark_alloc_pd(l.allocPDFn, ctx)
	if pd == nil {
		return nil, errorf("ibv_alloc_pd: %v", errnoOr(errno, -1))
	}
	return pd, nil
}

func (l *Lib) deallocPD(pd unsafe.Pointer) error {
	if rc := C.ark_dealloc_pd(l.deallocPDFn, pd); rc != 0 {
		return errorf("ibv_dealloc_pd: %d", int(rc))
	}
	return nil
}
