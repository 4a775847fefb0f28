#!/usr/bin/env bash
# make demo: start a dev cluster (one server, two agents with 4 fake H200s
# each) in a temporary directory, run the hello-gang job on it, print each
# rank's output and the job's final state, and stop the cluster. Exits 0
# only if the job succeeded.
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
echo "==> ark job submit --wait examples/hello-gang.yaml"
set +e
out=$(ark job submit --wait --timeout 60s examples/hello-gang.yaml)
rc=$?
set -e
echo "$out"
id=$(echo "$out" | awk '$1 == "ID" {print $2; exit}')
if [ -z "$id" ]; then
	echo "demo: the job was not submitted; dev cluster log:" >&2
	cat "$dir/dev.log" >&2
	exit 1
fi
for rank in 0 1; do
	echo
	echo "==> ark job logs $id --rank $rank"
	ark job logs "$id" --rank "$rank"
done
echo
status=$(ark job status "$id" -o json | awk -F'"' '$2 == "status" {print $4; exit}')
echo "==> job $id: $status"
exit "$rc"
