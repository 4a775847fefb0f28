#!/usr/bin/env bash
# make demo: start a dev cluster (one server, two agents with 4 fake H200s
# each) in a temporary directory and walk the main job: a 2-rank gang checks
# its rendezvous across both nodes; Ark's builtin GPT is fine-tuned with 2
# data-parallel ranks (progress lines, checkpoints to the store); an eval
# job compares base and fine-tuned; an inference job serves the result and
# answers a prompt.
# Exits 0 only if every job succeeded. Stops the cluster either way.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

dir=$(mktemp -d "${TMPDIR:-/tmp}/ark-demo.XXXXXX")
port=${ARK_DEMO_PORT:-}
if [ -z "$port" ]; then
	# A free pair of ports (the API, and Raft on the next one).
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
			port=$p
			break
		fi
	done
fi
export ARK_ADDR="http://127.0.0.1:$port"

ark dev --data-dir "$dir" --http "127.0.0.1:$port" --log-level warn >"$dir/dev.log" 2>&1 &
dev=$!
cleanup() {
	kill "$dev" 2>/dev/null || true
	wait "$dev" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

echo "==> dev cluster at $ARK_ADDR (data in $dir)"
for _ in $(seq 100); do
	if [ "$(ark node list -o json 2>/dev/null | grep -c '"status": "ready"')" -ge 2 ]; then
		break
	fi
	sleep 0.1
done
ark node list
echo
echo "==> 1. a 2-rank gang across both nodes: rendezvous check (examples/hello-gang.yaml)"
set +e
out=$(ark job submit --wait --timeout 60s examples/hello-gang.yaml)
rc=$?
set -e
id=$(echo "$out" | awk '$1 == "ID" {print $2; exit}')
if [ -z "$id" ] || [ "$rc" != 0 ]; then
	echo "$out"
	echo "demo: the gang did not succeed; dev cluster log:" >&2
	tail -50 "$dir/dev.log" >&2
	exit 1
fi
for rank in 0 1; do
	echo "--- rank $rank"
	ark job logs "$id" --rank "$rank"
done
echo "==> job $id: succeeded"

echo
echo "==> 2. fine-tune the builtin GPT from examples/base, 2 data-parallel ranks (examples/finetune.yaml)"
set +e
out=$(ark job submit --wait --timeout 120s examples/finetune.yaml)
rc=$?
set -e
echo "$out"
ft=$(echo "$out" | awk '$1 == "ID" {print $2; exit}')
if [ -z "$ft" ] || [ "$rc" != 0 ]; then
	echo "demo: the fine-tune did not succeed; dev cluster log:" >&2
	tail -50 "$dir/dev.log" >&2
	exit 1
fi
echo "--- rank 0's log"
ark job logs "$ft" --rank 0
ckpt=$(ark job status "$ft" -o json | awk -F'"' '$2 == "uri" {print $4; exit}')
if [ -z "$ckpt" ]; then
	echo "demo: the fine-tune reported no checkpoint" >&2
	exit 1
fi

echo
echo "==> 3. an eval job compares the base and the fine-tuned model on the held-out text"
cat >"$dir/eval.yaml" <<EOF
name: shakespeare-eval
kind: eval
resources: {gpus: 1, cpu: 1, memory: 512Mi}
task:
  driver: builtin
  builtin: {model: gpt-tiny, data: examples/data/shakespeare.txt, base: "file://$PWD/examples/base/gpt-tiny,$ckpt"}
EOF
set +e
out=$(ark job submit --wait --timeout 60s "$dir/eval.yaml")
rc=$?
set -e
ev=$(echo "$out" | awk '$1 == "ID" {print $2; exit}')
if [ -z "$ev" ] || [ "$rc" != 0 ]; then
	echo "$out"
	echo "demo: the eval job did not succeed" >&2
	exit 1
fi
ark job logs "$ev"

echo
echo "==> 4. an inference job serves the fine-tuned model (2 replicas, one per node) and answers a prompt"
cat >"$dir/serve.yaml" <<EOF
name: shakespeare-serve
kind: inference
replicas: 2
resources: {gpus: 1, cpu: 500m, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-tiny, base: "$ckpt"}
EOF
srv=$(ark job submit "$dir/serve.yaml")
echo "submitted $srv"
ark infer "$srv" --prompt "ROMEO:" --tokens 160 --temperature 0.8 --timeout 60s
ark job status "$srv" | sed -n '/^Allocations/,$p'
ark job cancel "$srv" >/dev/null
echo
echo "==> jobs"
ark job list
echo "==> demo succeeded"
