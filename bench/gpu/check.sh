#!/usr/bin/env bash
# bench/gpu/check.sh: the first minutes on a GPU machine, as one prepared run.
#
# Runs on a machine with one or more NVIDIA GPUs and the driver and nothing
# else (no Go, no CUDA toolkit, no network), from binaries built beforehand,
# in under 8 minutes (the per-step limits below add up to 7 min 45 s), and
# writes OUT/check.json (every step: status, reason, seconds, figures, the
# benchmark's own JSON) and OUT/check.md (a Markdown summary), with each
# step's log in OUT/<step>/log:
#   1 inventory   NVML inventory as the agent sees it (a server and an agent
#                 on loopback, then `ark node status`); GPU count vs nvidia-smi
#   2 conformance the kernelstest suite, CUDA backend against the CPU
#                 reference (kernels/cuda's test binary), on GPU 0, the
#                 gathered multi-adapter LoRA kernels included
#   3 sgemm       `ark bench kernels` on GPU 0 at 1024-8192: Ark's matmul, and
#                 cuBLAS's where libcublas loads (each checked before timed)
#   4 trainer     `ark train --device cuda` on GPU 0: tokens/s, MFU against
#                 the GPU's FP32 peak; then two ranks on the same GPU
#                 (gradients staged through host memory without NCCL)
#   5 serving     the serving benchmark on the GPU, once `ark bench serve`
#                 exists (the serving issue); skipped with that reason before
#   6 cpu-scaling `ark bench train` at 1, 2, 4 and 8 ranks on this machine's
#                 cores, which a 2-core CI machine cannot measure
# Every step has its own time limit; one that fails or times out does not
# stop the rest. Exit status: 1 if any correctness check failed (a
# conformance failure, a benchmark's own check, loss not going down, ranks
# ending with different parameters, an inventory that misses GPUs), 2 on
# bad usage, else 0 (a step that timed out or could not run is reported,
# not fatal).
#
# Build and carry (on a machine with Go and gcc, from the repository root):
#   make build                                      # bin/ark (cgo on: CUDA via dlopen)
#   go test -c -o bin/cuda.test ./kernels/cuda      # the conformance suite
# Carry the repository (this script, examples/data/shakespeare.txt) and
# bin/ (about 60 MB). With the device tool of this project that is:
#   run  command="bash bench/gpu/check.sh --out \$OUT"  carry=["bin"]  timeout_s=540
# and the results come back under files_at. By hand on a GPU machine:
#   scp -r bin bench examples HOST:ark/   (or rsync the repository)
#   cd ark && bash bench/gpu/check.sh --out /tmp/gpucheck
#   cat /tmp/gpucheck/check.md
# The embedded cubins (sm_80, sm_90, PTX for newer) mean only the driver's
# libcuda.so.1 is needed; `bin/ark version` lists them.
#
# Without a GPU (CI: --no-gpu --quick), steps 2-5 are skipped with their
# reason, step 1 runs against an agent with no GPUs and step 6 runs small
# (bench/gpu/check_test.go, which also checks that a failing step and one
# that times out do not stop the rest).
set -uo pipefail

usage() {
	echo "usage: $0 [--out DIR] [--ark PATH] [--cuda-test PATH] [--data FILE] [--no-gpu] [--quick] [--limit S]" >&2
	exit 2
}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=./gpucheck
ARK=$ROOT/bin/ark
CUDA_TEST=$ROOT/bin/cuda.test
DATA=$ROOT/examples/data/shakespeare.txt
NO_GPU=0
QUICK=0
LIMIT=0
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=${2:?}; shift 2 ;;
	--ark) ARK=${2:?}; shift 2 ;;
	--cuda-test) CUDA_TEST=${2:?}; shift 2 ;;
	--data) DATA=${2:?}; shift 2 ;;
	--no-gpu) NO_GPU=1; shift ;;
	--quick) QUICK=1; shift ;;
	--limit) LIMIT=${2:?}; shift 2 ;; # caps every step's limit (tests)
	*) usage ;;
	esac
done
[ -x "$ARK" ] || { echo "$0: no ark binary at $ARK (make build, or --ark PATH)" >&2; exit 2; }
[ -f "$DATA" ] || { echo "$0: no training text at $DATA (--data FILE)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
ARK=$(cd "$(dirname "$ARK")" && pwd)/$(basename "$ARK")

# Why the GPU steps cannot run here ("" when they can).
GPU_REASON=""
NGPU=0
if [ "$NO_GPU" = 1 ]; then
	GPU_REASON="--no-gpu given"
elif ! command -v nvidia-smi >/dev/null 2>&1; then
	GPU_REASON="no NVIDIA driver here (no nvidia-smi)"
elif ! NGPU=$(nvidia-smi -L 2>&1 | grep -c '^GPU '); then
	GPU_REASON="nvidia-smi -L lists no GPU: $(nvidia-smi -L 2>&1 | head -1)"
	NGPU=0
fi
NPROC=$(nproc 2>/dev/null || echo 1)
export OUT ARK CUDA_TEST DATA QUICK GPU_REASON NGPU NPROC

# --- helpers, used inside each step's own bash (exported) -------------------

# skip REASON: the step does not apply here.
skip() { echo skipped >"$D/status"; echo "$1" >"$D/reason"; exit 0; }
# fail REASON: a correctness check failed.
fail() { echo failed >"$D/status"; echo "$1" >"$D/reason"; exit 0; }
# pass FIGURES: the step ran and its checks held; FIGURES go to the summary.
pass() { echo passed >"$D/status"; echo "$1" >"$D/summary"; exit 0; }
# figures FIGURES: record figures before a check that may still fail.
figures() { echo "$1" >"$D/summary"; }
# freeport: a TCP port nothing listens on (best effort, no tools needed).
freeport() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
	done
	echo 24680
}
export -f skip fail pass figures freeport

# --- the steps ---------------------------------------------------------------

step_inventory() {
	local http raft dir srv agent i
	http=$(freeport); raft=$(freeport)
	dir=$(mktemp -d)
	"$ARK" server --name check-s1 --data-dir "$dir/server" --http 127.0.0.1:$http --raft 127.0.0.1:$raft \
		--bootstrap-expect 1 >"$D/server.log" 2>&1 &
	srv=$!
	"$ARK" agent --name check-node --servers http://127.0.0.1:$http --data-dir "$dir/agent" >"$D/agent.log" 2>&1 &
	agent=$!
	trap 'kill $agent $srv 2>/dev/null; wait $agent $srv 2>/dev/null; rm -rf "$dir"' EXIT
	for i in $(seq 150); do
		"$ARK" node status check-node --addr http://127.0.0.1:$http -o json >"$D/result.json" 2>/dev/null && break
		sleep 0.2
	done
	[ "$i" = 150 ] && fail "the agent did not register within 30 s (see server.log, agent.log)"
	"$ARK" node status check-node --addr http://127.0.0.1:$http
	local seen
	seen=$(grep -c '"uuid"' "$D/result.json")
	figures "$seen GPUs seen by the agent, $NGPU by nvidia-smi"
	[ "$seen" = "$NGPU" ] || fail "the agent sees $seen GPUs, nvidia-smi lists $NGPU"
	pass "$seen GPUs seen by the agent (nvidia-smi: $NGPU)"
}

step_conformance() {
	[ -n "$GPU_REASON" ] && skip "$GPU_REASON"
	[ -x "$CUDA_TEST" ] || skip "no conformance binary at $CUDA_TEST (go test -c -o bin/cuda.test ./kernels/cuda)"
	"$ARK" version
	"$CUDA_TEST" -test.run '^(TestConformance|TestEmbeddedImage|TestPickImage)$' -test.v
	local rc=$?
	grep -q -- '--- SKIP: TestConformance' "$D/log" && fail "the suite skipped on a GPU machine: $(grep -A1 -- '--- SKIP: TestConformance' "$D/log" | tail -1)"
	[ $rc = 0 ] || fail "conformance failed (exit $rc): $(grep -m3 -- '--- FAIL' "$D/log" | tr '\n' ' ')"
	# The batched multi-adapter LoRA kernel is optional to the suite (a
	# device without it passes): on the GPU it must have run.
	if ! grep -q -- '--- PASS: TestConformance/GatherLoRA' "$D/log" || grep -q 'has no GatherLoRA' "$D/log"; then
		fail "GatherLoRA (lora_shrink/lora_expand) did not run on the GPU: the CUDA device lacks kernels.GatheredLoRA"
	fi
	pass "all ops match the CPU reference ($(grep -c -- '--- PASS: TestConformance/' "$D/log") subtests); $(grep -m1 -o 'cuda: [^,]*, sm_[0-9]*, kernels [^,]*' "$D/log")"
}

# jmap FILE KEY: "k=v k=v" (v rounded) from a flat JSON object KEY in FILE.
jmap() {
	tr -d '\n ' <"$1" | grep -o "\"$2\":{[^}]*}" | sed 's/.*{//; s/}//; s/"//g' | tr ',' '\n' |
		awk -F: 'NF == 2 { v = $2 + 0; printf "%s%s=%s", sep, $1, (v >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v)); sep = " " }'
}
# gflops FILE: "size=GFLOP/s ..." from a kbench JSON's cuda_sgemm_gflops.
gflops() { jmap "$1" cuda_sgemm_gflops; }
export -f jmap gflops

step_sgemm() {
	[ -n "$GPU_REASON" ] && skip "$GPU_REASON"
	local args=(bench kernels --json --sizes 1024,2048,4096,8192 --naive=false --openblas=false --threads "$NPROC" --min-time 200ms)
	# Ark's own matmul first (cuBLAS off), then cuBLAS where it loads.
	ARK_CUDA_CUBLAS=off "$ARK" "${args[@]}" >"$D/result.json" || fail "ark bench kernels (Ark's matmul) failed its check or did not run: exit $?"
	local s="Ark GFLOP/s: $(gflops "$D/result.json")"
	figures "$s"
	if ldconfig -p 2>/dev/null | grep -q 'libcublas\.so'; then
		"$ARK" "${args[@]}" >"$D/cublas.json" || fail "ark bench kernels (cuBLAS) failed its check: exit $?"
		s="$s; cuBLAS GFLOP/s: $(gflops "$D/cublas.json")"
	else
		s="$s; no libcublas here, no cuBLAS baseline"
	fi
	pass "$s"
}

# peak_tflops NAME: the GPU's dense FP32 (non-tensor-core) peak, MFU's
# denominator: Ark's kernels are FP32 CUDA cores.
peak_tflops() {
	case $1 in
	*H200* | *H100*SXM* | *H100*HBM3*) echo 66.9 ;;
	*H100*) echo 51.2 ;;
	*A100*) echo 19.5 ;;
	*L40S*) echo 91.6 ;;
	*L40*) echo 90.5 ;;
	*A10*) echo 31.2 ;;
	*L4*) echo 30.3 ;;
	*) echo 0 ;;
	esac
}
export -f peak_tflops

# trained LOG: "params loss0 loss1 tokens/s" from ark train's output.
trained() {
	local params line
	params=$(grep -m1 -o ': [0-9]* parameters' "$1" | grep -o '[0-9]*')
	line=$(grep -m1 '^done:' "$1")
	echo "${params:-0} $(echo "$line" | sed -n 's/.*loss \([0-9.]*\) -> \([0-9.]*\), \([0-9.]*\) tokens\/s.*/\1 \2 \3/p')"
}
export -f trained

step_trainer() {
	[ -n "$GPU_REASON" ] && skip "$GPU_REASON"
	local name steps=60 args p l0 l1 tps peak mfu
	name=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null)
	args=(task train --device cuda --model gpt-small --data "$DATA" --batch 8 --log-every 20 --eval-windows 0)
	CUDA_VISIBLE_DEVICES=0 "$ARK" "${args[@]}" --steps $steps >"$D/one.log" 2>&1 || fail "one rank on the GPU failed: $(tail -1 "$D/one.log")"
	cat "$D/one.log"
	read -r p l0 l1 tps <<<"$(trained "$D/one.log")"
	peak=$(peak_tflops "$name")
	mfu=$(awk -v t="${tps:-0}" -v p="$p" -v k="$peak" 'BEGIN { if (k > 0) printf "%.1f%%", 100 * t * 6 * p / (k * 1e12); else print "unknown peak" }')
	local s="$name: ${tps:-?} tokens/s, MFU $mfu (6 x $p params per token vs ${peak} TFLOP/s FP32), loss $l0 -> $l1"
	figures "$s"
	awk -v a="$l0" -v b="$l1" 'BEGIN { exit !(b + 0 < a + 0) }' || fail "loss did not go down on one GPU: $l0 -> $l1"
	# Two ranks on the same GPU: no NCCL, so gradients are staged through host memory.
	local port pids=() r ok=1
	port=$(freeport)
	for r in 0 1; do
		CUDA_VISIBLE_DEVICES=0 RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
			"$ARK" "${args[@]}" --steps 30 >"$D/rank$r.log" 2>&1 &
		pids+=($!)
	done
	for r in 0 1; do wait "${pids[$r]}" || ok=0; done
	cat "$D/rank0.log" "$D/rank1.log"
	[ $ok = 1 ] || fail "two ranks on one GPU: a rank failed: $(tail -1 "$D/rank0.log") / $(tail -1 "$D/rank1.log")"
	read -r p l0 l1 tps <<<"$(trained "$D/rank0.log")"
	awk -v a="$l0" -v b="$l1" 'BEGIN { exit !(b + 0 < a + 0) }' || fail "two ranks: loss did not go down: $l0 -> $l1"
	pass "$s; 2 ranks on GPU 0 (staged): ${tps:-?} tokens/s per rank, loss $l0 -> $l1"
}

step_serving() {
	"$ARK" bench --help 2>/dev/null | grep -q '^  serve ' || skip "the serving benchmark has not landed (no \`ark bench serve\` in this binary)"
	[ -n "$GPU_REASON" ] && skip "$GPU_REASON"
	"$ARK" bench serve --json --device cuda >"$D/result.json" || fail "ark bench serve failed: exit $?"
	pass "see result.json"
}

step_cpu_scaling() {
	local args=(bench train --json --transport shm --threads 1 --data "$DATA")
	if [ "$QUICK" = 1 ]; then
		args+=(--ranks 1,2 --steps 2 --rounds 1 --warmup 1)
	else
		[ "$NPROC" -ge 8 ] || skip "8 ranks need 8 cores; this machine has $NPROC"
		args+=(--ranks 1,2,4,8 --steps 20 --rounds 2 --warmup 3)
	fi
	"$ARK" "${args[@]}" >"$D/result.json" || fail "ark bench train failed: exit $?"
	# Data-parallel ranks (not the independent control runs) must end identical.
	local bad
	bad=$(tr -d '\n ' <"$D/result.json" | sed 's/},{/}\n{/g' | grep '"params_identical":false' | grep -vc '"independent":true')
	local tps
	tps=$(jmap "$D/result.json" tokens_per_sec_per_device)
	local eff
	eff=$(tr -d '\n ' <"$D/result.json" | grep -o '"scaling_efficiency":[0-9.e+-]*' | cut -d: -f2 | awk '{ printf "%.2f", $1 }')
	figures "tokens/s per rank by ranks: $tps; scaling efficiency $eff"
	[ "$bad" = 0 ] || fail "$bad data-parallel run(s) ended with ranks holding different parameters"
	pass "tokens/s per rank by ranks: $tps; scaling efficiency $eff ($NPROC cores)"
}
export -f step_inventory step_conformance step_sgemm step_trainer step_serving step_cpu_scaling

# --- runner ------------------------------------------------------------------

# run_step NAME LIMIT_S FUNCTION: runs the step in its own bash under a
# time limit; what it left in OUT/NAME says how it went.
STEPS=()
run_step() {
	local name=$1 limit=$2 fn=$3 t0 rc
	[ "$LIMIT" -gt 0 ] && [ "$LIMIT" -lt "$limit" ] && limit=$LIMIT
	local D=$OUT/$name
	rm -rf "$D"; mkdir -p "$D"
	STEPS+=("$name")
	echo "==> $name (limit ${limit}s)"
	t0=$(date +%s)
	D=$D timeout -k 10 "$limit" bash -c "$fn" >"$D/log" 2>&1
	rc=$?
	echo $(($(date +%s) - t0)) >"$D/seconds"
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo timeout >"$D/status"; echo "ran past its ${limit}s limit" >"$D/reason"
	elif [ ! -f "$D/status" ]; then
		echo error >"$D/status"; echo "exit $rc: $(tail -1 "$D/log")" >"$D/reason"
	fi
	echo "    $(cat "$D/status") $(cat "$D/reason" "$D/summary" 2>/dev/null | head -2 | tr '\n' ' ')"
}

run_step inventory 45 step_inventory
run_step conformance 75 step_conformance
run_step sgemm 150 step_sgemm
run_step trainer 105 step_trainer
run_step serving 30 step_serving
run_step cpu-scaling 60 step_cpu_scaling

# --- report ------------------------------------------------------------------

# json_str FILE: the file's text as a JSON string ("" when absent).
json_str() {
	if [ ! -f "$1" ]; then printf '""'; return; fi
	printf '"%s"' "$(tr -d '\000-\010\013\014\016-\037' <"$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/\\t/g' | sed ':a;N;$!ba;s/\n/\\n/g')"
}

failed=0
{
	printf '{\n  "ark": %s,\n  "gpus": %s,\n  "gpu_reason": %s,\n  "cores": %s,\n  "steps": [\n' \
		"$(printf '%s' "$("$ARK" version 2>&1)" >"$OUT/.v"; json_str "$OUT/.v")" "$NGPU" \
		"$(printf '%s' "$GPU_REASON" >"$OUT/.r"; json_str "$OUT/.r")" "$NPROC"
	sep=""
	for s in "${STEPS[@]}"; do
		D=$OUT/$s
		[ "$(cat "$D/status")" = failed ] && failed=1
		result=null
		# The benchmark's own JSON when it is one object.
		if [ -s "$D/result.json" ] && head -c1 "$D/result.json" | grep -q '{' && tail -c2 "$D/result.json" | grep -q '}'; then
			result=$(cat "$D/result.json")
		fi
		printf '%s    {"name": "%s", "status": "%s", "seconds": %s, "reason": %s, "figures": %s, "log": "%s/log", "result": %s}' \
			"$sep" "$s" "$(cat "$D/status")" "$(cat "$D/seconds")" "$(json_str "$D/reason")" "$(json_str "$D/summary")" "$s" "$result"
		sep=$',\n'
	done
	printf '\n  ],\n  "correctness_failed": %s\n}\n' "$([ $failed = 1 ] && echo true || echo false)"
} >"$OUT/check.json"
rm -f "$OUT/.v" "$OUT/.r"

{
	echo "# GPU check"
	echo
	echo "$("$ARK" version 2>&1 | tr '\n' ';' | sed 's/;/; /g')"
	echo
	echo "GPUs: $NGPU${GPU_REASON:+ ($GPU_REASON)}; cores: $NPROC"
	echo
	echo "| step | status | s | figures / reason |"
	echo "| --- | --- | ---: | --- |"
	for s in "${STEPS[@]}"; do
		D=$OUT/$s
		echo "| $s | $(cat "$D/status") | $(cat "$D/seconds") | $(cat "$D/summary" "$D/reason" 2>/dev/null | tr '\n|' ' /') |"
	done
	echo
	[ $failed = 1 ] && echo "**A correctness check failed.**" || echo "No correctness check failed."
} >"$OUT/check.md"

cat "$OUT/check.md"
exit $failed
