#!/usr/bin/env bash
# Push→live and revert→live latency of a generated ~200-page Hugo site,
# next to a bare Hugo build of the same tree (see bench/README.md).
# Extra arguments go to `go test`, e.g. `bench/push-to-live.sh -count 3`.
# Scratch (git repos, data_dir, build output) goes to $TMPDIR, default /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

log="$(mktemp "${TMPDIR:-/tmp}/sitehost-push-to-live.XXXXXX.log")"

echo "date:  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:   $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "go:    $(go version)"
echo "tmp:   ${TMPDIR:-/tmp}"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# -v: the per-iteration figures are b.Logf lines, which go test cuts short
# without it. The server's own log lines stay in $log.
if ! go test -tags extended -run XXX -bench 'PushToLive|RevertToLive' -benchtime 10x -count 1 -v "$@" ./cmd/sitehost >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
grep -E '^(Benchmark|ok|PASS|FAIL)|(push→live|bare hugo|hugo in pipeline|revert→live|builds:) ' "$log" | sed -E 's/^ +bench_test\.go:[0-9]+: /    /'
echo
echo "full log: $log"
