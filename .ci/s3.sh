#!/usr/bin/env bash
# .ci/s3.sh: install (if missing) and start versitygw, a real S3 gateway, on a
# free loopback port for the storage tests and `ark bench ckpt --s3`.
#
# Usage:
#   eval "$(.ci/s3.sh)"          # prints export lines on stdout
#   .ci/s3.sh ENVFILE && . ENVFILE
#   .ci/s3.sh stop [ENVFILE]     # stops the server started earlier
#
# Exports ARK_TEST_S3_ENDPOINT (http://127.0.0.1:PORT), AWS_ENDPOINT_URL (the
# same), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, ARK_TEST_S3_PID
# and ARK_TEST_S3_DIR. The server runs in the background until `stop`, which
# also removes ARK_TEST_S3_DIR when this script created it; its data and log
# live under ARK_S3_DIR (default a new temp dir). ARK_S3_POSIX_FLAGS adds
# flags to the posix backend (e.g. --data-integrity-etag: CRC64NVME ETags
# instead of MD5, which costs the server about a core-second per 600 MB).
# Progress goes to stderr, so stdout stays eval-able.
#
# In .ci/run:
#   eval "$(.ci/s3.sh)"
#   trap '.ci/s3.sh stop' EXIT
#   make test   # CI=true: the S3 tests fail instead of skipping without it
set -euo pipefail

VERSION=v1.8.0
CACHE="${ARK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ark-tools}/versitygw-$VERSION"
BIN="$CACHE/versitygw"

log() { echo "s3.sh: $*" >&2; }

if [[ "${1:-}" == stop ]]; then
	pid="${ARK_TEST_S3_PID:-}"
	if [[ -n "${2:-}" && -f "$2" ]]; then
		pid=$(sed -n 's/^export ARK_TEST_S3_PID=//p' "$2")
	fi
	dir="${ARK_TEST_S3_DIR:-}"
	if [[ -n "${2:-}" && -f "$2" ]]; then
		dir=$(sed -n 's/^export ARK_TEST_S3_DIR=//p' "$2")
	fi
	if [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; then
		log "stopped versitygw (pid $pid)"
	fi
	# Remove the data only of a directory this script made.
	if [[ "$dir" == */ark-s3.?????? && -d "$dir" ]]; then
		sleep 0.2
		rm -rf "$dir"
	fi
	exit 0
fi

if [[ ! -x "$BIN" ]]; then
	log "installing versitygw $VERSION into $CACHE (about 3.5 min cold)"
	mkdir -p "$CACHE"
	# Outside the repo, so Ark's go.mod is neither read nor changed.
	(cd / && GOBIN="$CACHE" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION") >&2
fi

DIR="${ARK_S3_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ark-s3.XXXXXX")}"
mkdir -p "$DIR/data"

# ARK_S3_TLS=1 serves https with a self-signed certificate for 127.0.0.1 and
# exports AWS_CA_BUNDLE, which the s3 backend trusts.
SCHEME=http
TLS_FLAGS=()
if [[ "${ARK_S3_TLS:-}" == 1 ]]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
	SCHEME=https
	TLS_FLAGS=(--cert "$DIR/cert.pem" --key "$DIR/key.pem")
fi
ACCESS="${ARK_TEST_S3_ACCESS:-arktestaccess}"
SECRET="${ARK_TEST_S3_SECRET:-arktestsecret0123456789}"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
	# No python: pick a random high port that nothing listens on.
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	return 1
}

# answers PORT: the server gives any HTTP answer (403 without credentials).
answers() {
	if command -v curl >/dev/null; then
		local code
		code=$(curl -sk -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:$1/" 2>/dev/null) && [[ "$code" != 000 ]]
		return
	fi
	[[ "$SCHEME" == https ]] && { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; return; }
	(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 4 <&3 | grep -q HTTP) 2>/dev/null
}

for attempt in 1 2 3; do
	PORT=$(free_port)
	# shellcheck disable=SC2086 # ARK_S3_POSIX_FLAGS is a list of flags
	nohup "$BIN" --access "$ACCESS" --secret "$SECRET" --port "127.0.0.1:$PORT" "${TLS_FLAGS[@]}" --quiet \
		posix ${ARK_S3_POSIX_FLAGS:-} "$DIR/data" \
		>"$DIR/versitygw.log" 2>&1 </dev/null &
	PID=$!
	for _ in $(seq 100); do
		if ! kill -0 "$PID" 2>/dev/null; then
			break
		fi
		if answers "$PORT"; then
			log "versitygw $VERSION serving on 127.0.0.1:$PORT (pid $PID, data $DIR)"
			OUT=$(
				cat <<EOS
export ARK_TEST_S3_ENDPOINT=$SCHEME://127.0.0.1:$PORT
export AWS_ENDPOINT_URL=$SCHEME://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
export ARK_TEST_S3_PID=$PID
export ARK_TEST_S3_DIR=$DIR
EOS
			)
			if [[ "$SCHEME" == https ]]; then
				OUT+=$'\n'"export AWS_CA_BUNDLE=$DIR/cert.pem"
			fi
			if [[ -n "${1:-}" ]]; then
				printf '%s\n' "$OUT" >"$1"
			else
				printf '%s\n' "$OUT"
			fi
			exit 0
		fi
		sleep 0.1
	done
	kill "$PID" 2>/dev/null || true
	log "attempt $attempt: versitygw did not answer on port $PORT; log:"
	tail -5 "$DIR/versitygw.log" >&2 || true
done
log "could not start versitygw"
exit 1
