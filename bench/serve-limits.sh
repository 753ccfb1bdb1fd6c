#!/usr/bin/env bash
# What server.limits costs the data plane: plain HTTP keep-alive
# throughput of the sitehost built from this tree against one built from
# BEFORE_REF (default: where this branch left main), serving the same
# site, interleaved so that load from elsewhere on the machine hits both
# alike (each round swaps which runs first). wrk on loopback, -c32 from one
# address (under the default conns_per_ip of 256), both with defaults.
#
#   keepalive-html  the ~5 KiB index.html
#   keepalive-css   the ~30 KiB style.css
#   keepalive-1mib  a 1 MiB file (write deadline 10 s + 16 s)
#
# Besides wrk's req/s and latency, each run reports sitehost's CPU time per
# request (from /proc: user + system), which other load on the machine
# disturbs far less.
#
# Needs go, git, curl and wrk (installed with apt-get when missing).
# Knobs (environment): BEFORE_REF (git merge-base HEAD main), DURATION
# (15s), THREADS (2), CONNS (32), ROUNDS (3), KEEP (1: keep the scratch
# folder). Scratch goes to $TMPDIR, default /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

BEFORE_REF="${BEFORE_REF:-$(git merge-base HEAD main)}"
DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-3}"
LUA="$PWD/bench/wrk-result.lua"
HOST=bench.test

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sitehost-limits-bench.XXXXXX")"
# shellcheck source=bench/lib.sh disable=SC1091
. bench/lib.sh

need_wrk
machine_info
echo "wrk:   $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"

before_rev="$(git rev-parse --short "$BEFORE_REF")"
after_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +dirty)"
echo "before: $BEFORE_REF ($before_rev)   after: this tree ($after_rev)"
echo
git worktree add -q --detach "$TMP/before-src" "$BEFORE_REF"
(cd "$TMP/before-src" && go build -tags extended -o "$TMP/sitehost-before" ./cmd/sitehost)
git worktree remove --force "$TMP/before-src"
go build -tags extended -o "$TMP/sitehost-after" ./cmd/sitehost

# --- the site: a ~5 KiB page, a ~30 KiB stylesheet, a 1 MiB file ---------
repo="$TMP/repo"
mkdir -p "$repo"
awk -v dir="$repo" 'BEGIN {
  srand(1)
  s = "<!doctype html>\n<html><head><title>bench</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body>\n"
  while (length(s) < 5050) s = s sprintf("<p>paragraph %d of the bench page, %x</p>\n", length(s), int(rand() * 16777215))
  printf "%s</body></html>\n", s > (dir "/index.html")
  s = ""
  for (k = 0; length(s) < 30600; k++) s = s sprintf(".c%d { margin: %dpx; color: #%06x; }\n", k, k % 17, int(rand() * 16777215))
  printf "%s", s > (dir "/style.css")
}'
head -c 1048576 /dev/urandom >"$repo/blob.bin"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "bench site"

declare -A port_of pid_of
# cpu_ticks PID: the process's user + system CPU time, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
export SITEHOST_API_TOKEN="bench-$RANDOM$RANDOM$RANDOM$RANDOM$RANDOM$RANDOM"
for v in before after; do
  port_of[$v]="$(free_port)"
  cat >"$TMP/$v.yaml" <<YAML
server:
  data_dir: "$TMP/data-$v"
  http: "127.0.0.1:${port_of[$v]}"
  admin: "127.0.0.1:$(free_port)"
  poll_interval: 0s
  access_log: false
sites:
  - name: bench
    repo: "$repo"
    domains: [$HOST]
    build: {tool: none}
    previews: {enabled: false}
YAML
  "$TMP/sitehost-$v" serve -c "$TMP/$v.yaml" >"$TMP/$v.log" 2>&1 &
  pids+=($!)
  pid_of[$v]=$!
  wait_ok "sitehost ($v)" "$!" "$TMP/$v.log" "http://127.0.0.1:${port_of[$v]}/blob.bin" -H "Host: $HOST"
done
for v in before after; do
  for p in / /style.css /blob.bin; do
    cmp -s <(curl -sf -H "Host: $HOST" "http://127.0.0.1:${port_of[$v]}$p") \
      <(curl -sf -H "Host: $HOST" "http://127.0.0.1:${port_of[before]}$p") || die "$v serves other bytes at $p"
  done
done

# --- runs -----------------------------------------------------------------
declare -A sum_rps sum_cpu runs
printf '%-6s %-15s %-7s %10s %9s %9s %11s %7s\n' round test build req/s p50_ms p99_ms cpu_us/req errors
for round in $(seq "$ROUNDS"); do
  for t in keepalive-html:/ keepalive-css:/style.css keepalive-1mib:/blob.bin; do
    name="${t%%:*}" path="${t#*:}"
    # Odd rounds run before first, even rounds after first.
    order=(before after)
    [ $((round % 2)) -eq 0 ] && order=(after before)
    for v in "${order[@]}"; do
      t0="$(cpu_ticks "${pid_of[$v]}")"
      out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$LUA" -H "Host: $HOST" "http://127.0.0.1:${port_of[$v]}$path" | grep '^RESULT')"
      t1="$(cpu_ticks "${pid_of[$v]}")"
      eval "$(echo "$out" | sed 's/^RESULT //')" # requests= duration_us= … errors=
      # shellcheck disable=SC2154 # set by the eval
      rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
      cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v r="$requests" 'BEGIN { printf "%.0f", t / hz * 1e6 / r }')
      # shellcheck disable=SC2154
      printf '%-6s %-15s %-7s %10s %9.2f %9.2f %11s %7s\n' "$round" "$name" "$v" "$rps" \
        "$(echo "$p50_us / 1000" | bc -l)" "$(echo "$p99_us / 1000" | bc -l)" "$cpu" "$errors"
      sum_rps[$name.$v]=$(( ${sum_rps[$name.$v]:-0} + rps ))
      sum_cpu[$name.$v]=$(( ${sum_cpu[$name.$v]:-0} + cpu ))
      runs[$name.$v]=$(( ${runs[$name.$v]:-0} + 1 ))
    done
  done
done
echo
printf '%-15s %12s %12s %8s %14s %14s\n' test "req/s before" after after/before "cpu_us before" after
for name in keepalive-html keepalive-css keepalive-1mib; do
  b=$(( sum_rps[$name.before] / runs[$name.before] )) a=$(( sum_rps[$name.after] / runs[$name.after] ))
  cb=$(( sum_cpu[$name.before] / runs[$name.before] )) ca=$(( sum_cpu[$name.after] / runs[$name.after] ))
  printf '%-15s %12s %12s %7.1f%% %14s %14s\n' "$name" "$b" "$a" "$(echo "100 * $a / $b" | bc -l)" "$cb" "$ca"
done
