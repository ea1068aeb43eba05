#!/usr/bin/env bash
# verify.sh checks docs/deploy/ with what a machine without a Docker engine
# can run:
#
#   1. builds the binary the image holds, with docs/deploy/build.sh (the
#      very script the Dockerfile runs), and checks that it is static and
#      carries its version;
#   2. checks that Dockerfile.dockerignore leaves out no tracked file;
#   3. runs that binary as the image runs it (palaver run with
#      docs/deploy/container.yaml, moved to a temporary directory and to
#      free loopback ports), asks it with the HEALTHCHECK's command, stops
#      it with SIGTERM and times the stop; then a chat turn, a store backup
#      and a store check against the store it wrote;
#   4. runs systemd-analyze verify and security on palaver.service, with
#      ExecStart pointed at the binary just built;
#   5. when strace is installed, checks that every system call step 3 made
#      is allowed by the unit's SystemCallFilter.
#
# Nothing leaves the machine: the only provider configured is a closed
# loopback port. Run it from anywhere: bash docs/deploy/verify.sh
# It takes about half a minute with a warm Go build cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy=docs/deploy
tmp=$(mktemp -d "${TMPDIR:-/tmp}/palaver-verify.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
	echo "verify: FAIL: $*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

step "build: sh $deploy/build.sh (as the Dockerfile runs it)"
grep -q '^ *GOOS=$TARGETOS GOARCH=$TARGETARCH sh docs/deploy/build.sh /out/palaver$' $deploy/Dockerfile ||
	fail "the Dockerfile no longer builds with docs/deploy/build.sh"
bin=$tmp/palaver
start=$SECONDS
sh $deploy/build.sh "$bin"
size=$(stat -c %s "$bin")
echo "built in $((SECONDS - start)) s: $size bytes ($((size / 1024)) KiB)"
image_go=go$(sed -n 's/^ARG GO_VERSION=//p' $deploy/Dockerfile)
local_go=$(go env GOVERSION)
if [ "$image_go" = "$local_go" ]; then
	echo "Go: $local_go, the image's GO_VERSION"
else
	echo "note: built with $local_go; the image builds with $image_go (same script and flags, another compiler)"
fi

step "static"
if have file; then
	file "$bin"
	file "$bin" | grep -q 'statically linked' || fail "file does not call it statically linked"
fi
if have readelf; then
	if readelf -l "$bin" | grep -q INTERP; then
		fail "the binary names a dynamic loader (an INTERP program header)"
	fi
	echo "readelf: no INTERP program header (no dynamic loader)"
fi
info=$(go version -m "$bin")
echo "$info" | grep -E '^[[:space:]]+(mod[[:space:]]+github.com/palaver-bot|build[[:space:]]+(-trimpath|CGO_ENABLED|GOOS|GOARCH|vcs))'
echo "$info" | grep -qE 'build[[:space:]]+CGO_ENABLED=0' || fail "not built with CGO_ENABLED=0"
echo "$info" | grep -qE 'build[[:space:]]+-trimpath=true' || fail "not built with -trimpath"

step "version"
"$bin" version
"$bin" --version >/dev/null || fail "palaver --version failed"
if git rev-parse --git-dir >/dev/null 2>&1; then
	echo "$info" | grep -qE 'build[[:space:]]+vcs.revision=' || fail "a git checkout, but go build stamped no vcs.revision"
	"$bin" version | grep -q 'commit ' || fail "palaver version names no commit"
fi

step "build context: $deploy/Dockerfile.dockerignore"
if git rev-parse --git-dir >/dev/null 2>&1; then
	# Its patterns are written in the syntax .dockerignore and .gitignore
	# share (anchored with / or **/), so git can match them.
	tracked=$(git ls-files -ci --exclude-from=$deploy/Dockerfile.dockerignore)
	[ -z "$tracked" ] || fail "the build context would lack tracked files (go build would stamp the image as modified):
$tracked"
	echo "no tracked file is left out of the context"
else
	echo "skipped: not a git checkout"
fi

step "smoke: palaver run with the image's config, HEALTHCHECK, SIGTERM"
mkdir -p "$tmp/data"
config=$tmp/config.yaml
sed -e "s|path: /data/palaver.db|path: $tmp/data/palaver.db|" \
	-e "s|listen: 0.0.0.0:9090|listen: 127.0.0.1:0|" $deploy/container.yaml >"$config"
grep -q "path: $tmp/data/palaver.db" "$config" && grep -q 'listen: 127.0.0.1:0' "$config" ||
	fail "container.yaml no longer has storage.path /data/palaver.db and metrics.listen 0.0.0.0:9090; update this script"
cat >>"$config" <<'EOF'
# Added by verify.sh: a provider that is a closed loopback port, and the
# endpoint, so that palaver run has something to run without a token.
providers:
  local:
    base_url: http://127.0.0.1:1/v1
models:
  default: local/model
gateway:
  enabled: true
  listen: 127.0.0.1:0
EOF
trace=
if have strace; then
	trace="strace -f -qq -o $tmp/trace"
fi
# The image's CMD, with the config moved.
$trace "$bin" run --config "$config" 2>"$tmp/run.log" &
runner=$!
pid=$runner
if [ -n "$trace" ]; then
	for _ in $(seq 50); do
		pid=$(ps -o pid= --ppid "$runner" | tr -d ' ') && [ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || fail "palaver did not start under strace"
fi
port=
for _ in $(seq 100); do
	port=$(sed -n 's|.*url=http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$tmp/run.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || fail "palaver run did not log its metrics address:
$(cat "$tmp/run.log")"
# The HEALTHCHECK's command, with its --config naming a copy of the config
# that says which port palaver took. It asks until palaver is up, as
# Docker does during the start period.
health_config=$tmp/health.yaml
sed "0,/listen: 127.0.0.1:0/s//listen: 127.0.0.1:$port/" "$config" >"$health_config"
healthcheck=$(sed -n 's/^ *CMD \(\[.*"health".*\]\)$/\1/p' $deploy/Dockerfile)
[ -n "$healthcheck" ] || fail "no HEALTHCHECK CMD [... \"health\" ...] line in the Dockerfile"
echo "HEALTHCHECK CMD $healthcheck"
read -r -a argv <<<"$(echo "$healthcheck" | tr -d '[]",')"
argv[0]=$bin
for i in "${!argv[@]}"; do
	if [ "${argv[$i]}" = /etc/palaver/config.yaml ]; then
		argv[$i]=$health_config
	fi
done
echo "runs: ${argv[*]}"
ok=
for _ in $(seq 50); do
	if "${argv[@]}" >"$tmp/health.out" 2>&1; then
		ok=1
		break
	fi
	sleep 0.1
done
cat "$tmp/health.out"
[ -n "$ok" ] || fail "the HEALTHCHECK command never reported ok
$(cat "$tmp/run.log")"
start=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$runner" || rc=$?
stop_ms=$((($(date +%s%N) - start) / 1000000))
pid=
[ "$rc" = 0 ] || fail "palaver run exited $rc after SIGTERM:
$(cat "$tmp/run.log")"
grep -q 'stopped' "$tmp/run.log" || fail "palaver run did not log that it stopped"
echo "SIGTERM: exited 0 after $stop_ms ms (idle; answers in progress may take up to the grace)"

# A turn (the provider refuses: an error answer, but the store is written),
# a backup and a check, for the store's system calls.
echo hello | ${trace:+$trace.chat} "$bin" chat --config "$config" >"$tmp/chat.out" 2>&1 ||
	fail "palaver chat failed: $(cat "$tmp/chat.out")"
${trace:+$trace.backup} "$bin" store backup --config "$config" "$tmp/backup.db"
${trace:+$trace.check} "$bin" store check "$tmp/backup.db" | tail -1

step "systemd: systemd-analyze verify and security on $deploy/palaver.service"
unit=$tmp/unit/palaver.service
mkdir -p "$tmp/unit"
sed "s|^ExecStart=/usr/local/bin/palaver |ExecStart=$bin |" $deploy/palaver.service >"$unit"
grep -q "^ExecStart=$bin " "$unit" || fail "palaver.service: no ExecStart=/usr/local/bin/palaver line to point at the build"
if have systemd-analyze; then
	systemd-analyze --version | head -1
	out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
	echo "systemd-analyze verify: no complaint"
	# Exposure is 0 (locked down) to 10 (unprotected); --threshold takes
	# tenths of it: fail above 2.0.
	systemd-analyze security --offline=true --threshold=20 --no-pager "$unit" >"$tmp/security.txt" ||
		fail "systemd-analyze security: exposure above 2.0:
$(cat "$tmp/security.txt")"
	grep '✗' "$tmp/security.txt" || true
	tail -1 "$tmp/security.txt"
else
	echo "skipped: no systemd-analyze (Debian: apt-get install systemd)"
fi

step "system calls against the unit's SystemCallFilter"
if [ -z "$trace" ]; then
	echo "skipped: no strace (Debian: apt-get install strace)"
elif ! have systemd-analyze; then
	echo "skipped: no systemd-analyze"
else
	# expand NAME prints the system calls of a set (@name) or a call.
	expand() {
		case $1 in
		@*) systemd-analyze syscall-filter --no-pager "$1" | sed '1d; s/^[[:space:]]*//; /^#/d; /^$/d' |
			while read -r s; do expand "$s"; done ;;
		*) echo "$1" ;;
		esac
	}
	: >"$tmp/allow"
	: >"$tmp/deny"
	while read -r value; do
		case $value in
		~*) for s in ${value#\~}; do expand "$s"; done >>"$tmp/deny" ;;
		*) for s in $value; do expand "$s"; done >>"$tmp/allow" ;;
		esac
	done < <(sed -n 's/^SystemCallFilter=//p' $deploy/palaver.service)
	sort -u "$tmp/allow" >"$tmp/allow.s"
	sort -u "$tmp/deny" >"$tmp/deny.s"
	comm -23 "$tmp/allow.s" "$tmp/deny.s" >"$tmp/allowed"
	cat "$tmp"/trace* | sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' | sort -u >"$tmp/used"
	denied=$(comm -23 "$tmp/used" "$tmp/allowed")
	[ -z "$denied" ] || fail "palaver made system calls the unit forbids: $denied"
	echo "$(wc -l <"$tmp/used") distinct system calls made, all within the $(wc -l <"$tmp/allowed") the filter allows"
fi

printf '\nverify: OK in %d s\n' "$SECONDS"
