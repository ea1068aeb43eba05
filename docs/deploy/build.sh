#!/bin/sh
# build.sh OUT builds the palaver binary the way the container image does:
# docs/deploy/Dockerfile and docs/deploy/verify.sh both run this file, so
# the two builds cannot drift apart.
#
# The binary is static (CGO_ENABLED=0: no libc, runs on distroless or
# scratch), built with -trimpath (no build machine paths in it) and
# stripped of its symbol table and DWARF (-s -w; stack traces still name
# functions and lines). go build stamps the module version and, when the
# source is a git checkout and git is installed, the commit, its time and
# whether the tree was modified: "palaver version" and "go version -m"
# print them. GOOS and GOARCH are taken from the environment (the
# Dockerfile sets them for cross-builds); GOFLAGS is cleared so that a
# caller's flags (.ci/run sets -buildvcs=false) do not change the binary.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUT" >&2
	exit 2
fi
out=$1
case $out in
/*) ;;
*) out=$PWD/$out ;;
esac
cd "$(dirname "$0")/../.."

CGO_ENABLED=0 GOFLAGS= exec go build -trimpath -buildvcs=auto -ldflags='-s -w' -o "$out" ./cmd/palaver
