#!/usr/bin/env bash
# make demo: start a dev cluster (one server, two agents with 4 fake H200s
# each) in a temporary directory and walk the main job: a 2-rank gang checks
# its rendezvous across both nodes; Ark's builtin GPT is fine-tuned with 2
# data-parallel ranks from the catalog's base and registers its result, two
# LoRA adapters are trained on the two halves of the corpus and registered
# the same way, one eval job scores all four, an inference job serves the
# base with both adapters, answers through the chat API (one answer
# streamed) and applies one intervention rule, and the catalog compares
# them.
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
echo "==> 2. the model catalog: register the shipped base as shakespeare@1"
ark model register shakespeare --uri "file://$PWD/examples/base/gpt-tiny" --arch gpt-tiny \
	--description "gpt-tiny pretrained on the second half of tinyshakespeare"

# submit_wait SPEC WHAT: submit and wait for success; sets $job.
submit_wait() {
	local out rc
	set +e
	out=$(ark job submit --wait --timeout 120s "$1")
	rc=$?
	set -e
	job=$(echo "$out" | awk '$1 == "ID" {print $2; exit}')
	if [ -z "$job" ] || [ "$rc" != 0 ]; then
		echo "$out"
		echo "demo: $2 did not succeed; dev cluster log:" >&2
		tail -50 "$dir/dev.log" >&2
		exit 1
	fi
}

echo
echo "==> 3. fine-tune shakespeare@1 with 2 data-parallel ranks; the result registers as shakespeare@2"
cat >"$dir/finetune.yaml" <<EOF
name: shakespeare-ft
kind: finetune
replicas: 2
resources: {gpus: 1, cpu: 1, memory: 512Mi}
task:
  driver: builtin
  builtin: {base: "model://shakespeare@1", data: examples/data/shakespeare.txt, steps: 150, batch: 8, lr: 1e-3}
checkpoint: {every: 50, keep: 2}
restart: {maxRestarts: 2}
output: {model: shakespeare, description: fine-tuned on the first 6000 lines}
EOF
submit_wait "$dir/finetune.yaml" "the fine-tune"
ft=$job
echo "--- rank 0's log"
ark job logs "$ft" --rank 0

echo
echo "==> 4. two LoRA adapters (rank 8) on the frozen shakespeare@1, one per half of the corpus: bard@1 and quill@1"
half=$(($(wc -l <examples/data/shakespeare.txt) / 2))
head -n "$half" examples/data/shakespeare.txt >"$dir/first-half.txt"
tail -n +"$((half + 1))" examples/data/shakespeare.txt >"$dir/second-half.txt"
# lora NAME DATA STEPS DESCRIPTION: train an adapter and register it as NAME@1.
lora() {
	cat >"$dir/lora-$1.yaml" <<EOF
name: lora-$1
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 512Mi}
task:
  driver: builtin
  builtin: {base: "model://shakespeare@1", data: "$2", steps: $3, batch: 8, lr: 3e-3,
            lora: {rank: 8, alpha: 16}}
output: {model: $1, description: "$4"}
EOF
	submit_wait "$dir/lora-$1.yaml" "the $1 LoRA fine-tune"
}
lora bard "$dir/first-half.txt" 60 "a LoRA specialist of the corpus's first $half lines"
lora quill "$dir/second-half.txt" 30 "a LoRA specialist of the corpus's last $half lines"
# The leader registers a result within a second of the job's end.
for _ in $(seq 50); do
	if ark model show bard >/dev/null 2>&1 && ark model show quill >/dev/null 2>&1 && ark model show shakespeare | grep -q "^2 "; then
		break
	fi
	sleep 0.2
done
ark model versions shakespeare
ark model lineage quill@1

echo
echo "==> 5. one eval job scores the base, the fine-tune and both adapters on the held-out text"
cat >"$dir/eval.yaml" <<EOF
name: shakespeare-eval
kind: eval
resources: {gpus: 1, cpu: 1, memory: 512Mi}
task:
  driver: builtin
  builtin: {data: examples/data/shakespeare.txt, base: "model://shakespeare@1,model://shakespeare@2,model://bard@1,model://quill@1"}
EOF
submit_wait "$dir/eval.yaml" "the eval job"
ark job logs "$job"

echo
echo "==> 6. an inference job serves shakespeare@1 with both adapters, 1+2 (2 replicas, one per node), and one intervention rule"
cat >"$dir/serve.yaml" <<EOF
name: shakespeare-serve
kind: inference
replicas: 2
resources: {gpus: 1, cpu: 500m, memory: 256Mi}
task:
  driver: builtin
  builtin:
    base: "model://shakespeare@1"
    adapters: [{name: bard, uri: "model://bard@1"}, {name: quill, uri: "model://quill@1"}]
    rules: [{id: no-poison, stage: input, keywords: [poison], action: block, answer: "The apothecary is closed."}]
EOF
srv=$(ark job submit "$dir/serve.yaml")
echo "submitted $srv"
echo "--- the base continues a prompt"
ark infer "$srv" --prompt "ROMEO:" --tokens 120 --temperature 0.8 --timeout 60s
echo "--- bard, through /v1/chat/completions (ark infer --chat --model bard)"
ark infer "$srv" --chat --model bard --prompt "Who art thou?" --tokens 120 --temperature 0.8 --timeout 60s
echo "--- quill, the same, streamed as it is generated (--stream: Server-Sent Events)"
ark infer "$srv" --chat --model quill --stream --prompt "Who art thou?" --tokens 120 --temperature 0.8 --timeout 60s
echo "--- a prompt the rule blocks: the rule answers, the model is not asked"
ark infer "$srv" --prompt "ROMEO: sell me a poison" --tokens 40 --timeout 60s
echo "--- a new rule answer, by ark job update: applied in place, no replica restarts"
sed 's/The apothecary is closed./Ask the friar instead./' "$dir/serve.yaml" > "$dir/serve-v1.yaml"
ark job update "$srv" "$dir/serve-v1.yaml"
for _ in $(seq 1 20); do # each replica asks its agent for its rules every 2 s
	ans=$(ark infer "$srv" --prompt "ROMEO: sell me a poison" --tokens 40 --timeout 60s 2>/dev/null || true)
	case "$ans" in *friar*) break ;; esac
	sleep 0.5
done
echo "$ans"
case "$ans" in *friar*) ;; *) echo "demo: the updated rule did not take effect" >&2; exit 1 ;; esac
ark job history "$srv"
ark job status "$srv" | sed -n '/^Endpoint/,/^Resources/p;/^Allocations/,$p'
ark job cancel "$srv" >/dev/null
echo
echo "==> jobs"
ark job list
echo
echo "==> the catalog compares them, from the recorded results (no rerun)"
for _ in $(seq 50); do
	ark model compare shakespeare bard quill >/dev/null 2>&1 && break
	sleep 0.2
done
ark model compare shakespeare bard quill
echo "==> demo succeeded"
