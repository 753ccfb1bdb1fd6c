#!/usr/bin/env bash
# What observability costs the data plane: every answer increments the
# Prometheus counters (always) and writes one access-log line with log/slog
# unless `server.access_log: false`. wrk on loopback against one sitehost
# (storage fs) serving 1,000 small pages, one sitehost process per case
# (see bench/README.md):
#
#   off      access_log: false — the counters only (they cannot be turned off)
#   file     access_log: true, stderr to a file in $TMPDIR (JSON lines, on
#            disk: as under systemd or docker, which also write them out)
#   tmpfs    access_log: true, stderr to a file in /dev/shm (JSON lines, in
#            memory: the formatting and the write(2) without the disk)
#   devnull  access_log: true, stderr to /dev/null. /dev/null is a character
#            device, so sitehost takes it for a terminal and logs *text*
#            (slog's TextHandler), not JSON: the cheapest sink
#
# Then the access log's size per request and a sample line, the counters
# against wrk's request count, and the time and size of a /metrics scrape.
#
# Needs go, git, curl and wrk (installed with apt-get when missing).
#
# Knobs (environment): DURATION (15s) per wrk run, THREADS (2), CONNS (32),
# ROUNDS (3; each round runs every case once, in turn, so noise shows as
# spread between rounds of the same case), SCRAPES (20), KEEP (1: keep the
# scratch folder and the access logs). Scratch goes to $TMPDIR, default
# /tmp; the tmpfs case's log to /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-3}"
SCRAPES="${SCRAPES:-20}"
# The s3-vs-fs wrk script does what this one needs: cycle through a paths
# file (the -H headers go into every request) and print the RESULT line.
LUA="$PWD/bench/serve-s3-vs-fs.lua"
HOST=bench.test

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sitehost-observability-bench.XXXXXX")"
# shellcheck source=bench/lib.sh disable=SC1091 # (followed with shellcheck -x)
. bench/lib.sh # we are at the repository root (cd above)

# The tmpfs case's logs live outside $TMP; remove them on exit too (before
# lib.sh's cleanup, which reads the exit status).
cases=(off file tmpfs devnull)
SHM=""
if [ "$(stat -f -c %T /dev/shm 2>/dev/null || true)" = tmpfs ]; then
  SHM="$(mktemp -d /dev/shm/sitehost-observability-bench.XXXXXX)"
  cleanup_shm() {
    local rc=$?
    [ -n "${KEEP:-}" ] || rm -rf "$SHM"
    # cleanup reads the script's status from $?; `|| cleanup` keeps set -e
    # from ending the trap at the (exit).
    if [ "$rc" -eq 0 ]; then cleanup; else (exit "$rc") || cleanup; fi
  }
  trap cleanup_shm EXIT
else
  echo "no tmpfs at /dev/shm: the tmpfs case is left out" >&2
  cases=(off file devnull)
fi

# --- tools ---------------------------------------------------------------

need_wrk

machine_info
echo "wrk:   $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "tmp:   $TMP ($(df --output=fstype "$TMP" | tail -n 1))"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk:   -t$THREADS -c$CONNS -d$DURATION, Host: $HOST; $ROUNDS rounds of: ${cases[*]}"
echo

go build -tags extended -o "$TMP/sitehost" ./cmd/sitehost

# --- the site --------------------------------------------------------------
# 1,000 HTML pages of 3–5 KiB at /posts/NNNN/ (paragraphs of words drawn from
# a small vocabulary) and a home page linking 50 of them, committed once.

repo="$TMP/repo"
seq -f "$repo/posts/%04g" 0 999 | xargs mkdir -p
awk -v dir="$repo" 'BEGIN {
  srand(1)
  nw = split("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur", w, " ")
  for (i = 0; i < 1000; i++) {
    f = sprintf("%s/posts/%04d/index.html", dir, i)
    s = sprintf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Post %d | bench</title></head>\n<body><header><a href=\"/\">bench</a></header>\n<main><article><h1>Post %d</h1>\n", i, i)
    size = 3000 + int(rand() * 2000)
    while (length(s) < size) {
      p = "<p>"
      n = 30 + int(rand() * 60)
      for (k = 0; k < n; k++) p = p (k ? " " : "") w[int(rand() * nw) + 1]
      s = s p ".</p>\n"
    }
    s = s sprintf("</article></main>\n<footer><a href=\"/posts/%04d/\">next</a></footer></body></html>\n", (i + 1) % 1000)
    printf "%s", s > f
    close(f)
  }
  f = dir "/index.html"
  s = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench</title></head>\n<body><h1>bench</h1><ul>\n"
  for (i = 0; i < 50; i++) s = s sprintf("<li><a href=\"/posts/%04d/\">Post %d</a></li>\n", i, i)
  printf "%s</ul></body></html>\n", s > f
  close(f)
}'
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "bench site"
seq -f "/posts/%04g/" 0 999 >"$TMP/pages.paths"
awk -v base=BASE '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, $0 }' "$TMP/pages.paths" >"$TMP/warm.curl.in"
page_bytes="$(find "$repo/posts" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / NR }')"
echo "site:  1,000 pages of 3–5 KiB (mean $page_bytes bytes) and a home page; wrk cycles through the 1,000 pages"

# --- the server -----------------------------------------------------------------

export SITEHOST_API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")"  # 32+ characters, as serve requires
data="$TMP/data"
pid=""
base=""
admin=""
sink=""

# sink_of N CASE: where sitehost's stdout and stderr go in run N of CASE.
sink_of() {
  case "$2" in
    off) echo "$TMP/log-$1-off.txt" ;;
    file) echo "$TMP/log-$1-file.txt" ;;
    tmpfs) echo "$SHM/log-$1-tmpfs.txt" ;;
    devnull) echo /dev/null ;;
  esac
}

# start_server N CASE: one sitehost with CASE's config on new ports, the
# data dir shared by every process (the first publishes the site, the
# others find it live and reuse it); returns once /readyz is 200 and the
# home page answers. poll_interval 0 and no previews: nothing but the
# benchmark's requests runs in the server (save its storage GC, a random
# time within 5 minutes of start, flagged in the table where the log says).
start_server() {
  local n=$1 c=$2 http_port admin_port al=true cfg="$TMP/sites-$1-$2.yaml"
  [ "$c" = off ] && al=false
  http_port="$(free_port)"
  admin_port="$(free_port)"
  cat >"$cfg" <<EOF
server:
  data_dir: "$data"
  http: "127.0.0.1:$http_port"
  admin: "127.0.0.1:$admin_port"
  preview_domain: localhost
  poll_interval: 0s
  api_token_env: SITEHOST_API_TOKEN
  access_log: $al
  storage: {kind: fs}
sites:
  - name: bench
    repo: "$repo"
    domains: [$HOST]
    build: {tool: none}
    previews: {enabled: false}
EOF
  "$TMP/sitehost" validate -c "$cfg" >/dev/null
  sink="$(sink_of "$n" "$c")"
  "$TMP/sitehost" serve -c "$cfg" >"$sink" 2>&1 &
  pid=$!
  pids+=("$pid")
  base="http://127.0.0.1:$http_port"
  admin="http://127.0.0.1:$admin_port"
  wait_ok sitehost "$pid" "$sink" "$admin/readyz"
  wait_ok sitehost "$pid" "$sink" "$base/" -H "Host: $HOST"
}

stop_server() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The data plane's answers for the site, from /metrics: the sum of
# sitehost_http_requests_total{site="bench"} over the status classes.
# (Counters at 1e6 and above are printed as 1.234567e+06; awk reads those.)
counted() {
  curl -sf "$admin/metrics" | awk '/^sitehost_http_requests_total\{/ && /site="bench"/ { s += $NF } END { printf "%.0f\n", s }'
}

wrk_once() {
  wrk -t"$THREADS" -c"$CONNS" -d"$2" --timeout 5s -H "Host: $HOST" -s "$LUA" "$base" -- "$TMP/pages.paths" >"$3"
}

# CPU time (clock ticks, user + system) of sitehost, and busy and total
# ticks of the whole machine: what neither wrk nor sitehost used was other
# load on the machine (for the file case that includes the kernel's
# writeback of the log).
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }
sys_ticks() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $13 }'; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
log_lines() { if [ -f "$sink" ]; then wc -l <"$sink"; else echo 0; fi; }
log_bytes() { if [ -f "$sink" ]; then stat -c %s "$sink"; else echo 0; fi; }

# run_case N CASE: start CASE's sitehost, warm it (every page once with
# curl, checked for 200, then 2 s of wrk, untimed), then one timed wrk run;
# appends a line to results.tsv. The server is left running.
run_case() {
  local n=$1 c=$2 out="$TMP/wrk-$1-$2.txt" c0 c1 s0 s1 m0 m1 wrkcpu r0 r1 l0 l1 b0 b1 gc=0 bad
  start_server "$n" "$c"
  sed "s|BASE|$base|" "$TMP/warm.curl.in" >"$TMP/warm.curl"
  bad="$(curl -s -H "Host: $HOST" -w '%{http_code}\n' -K "$TMP/warm.curl" | grep -cv '^200$' || true)"
  [ "$bad" -eq 0 ] || die "$c: $bad of the 1,000 pages did not answer 200"
  wrk_once "$c" 2s "$TMP/warm-$n-$c.txt"
  r0="$(counted)"
  l0="$(log_lines)"
  b0="$(log_bytes)"
  c0="$(cpu_ticks)"
  s0="$(sys_ticks)"
  m0="$(machine_ticks)"
  wrkcpu="$( { TIMEFORMAT='%3U %3S'; time wrk_once "$c" "$DURATION" "$out"; } 2>&1 | tail -n 1)"
  c1="$(cpu_ticks)"
  s1="$(sys_ticks)"
  m1="$(machine_ticks)"
  # Requests wrk had in flight when it stopped may still be answered.
  sleep 0.3
  r1="$(counted)"
  l1="$(log_lines)"
  b1="$(log_bytes)"
  grep -q '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT"; }
  if [ "$c" = devnull ]; then
    gc="?"
  elif grep -q '"msg":"garbage collected"' "$sink"; then
    gc=yes
  fi
  if [ "$c" = file ] || [ "$c" = tmpfs ]; then
    # One from the middle of the timed run (the last ones are the answers
    # cut short when wrk closed its connections).
    tail -n $(((l1 - l0) / 2)) "$sink" | grep -m 1 '"msg":"request"' >"$TMP/sample-$c.json" || true
  fi
  # → run case req/s p50 p99 errors sitehost-cpu-µs/req other-load(cores)
  #   wrk-requests counted log-lines log-bytes gc sitehost-system-µs/req
  awk -v n="$n" -v c="$c" -v cpu=$((c1 - c0)) -v sys=$((s1 - s0)) -v hz="$clk_tck" -v m0="$m0" -v m1="$m1" -v ncpu="$(nproc)" \
    -v wrkcpu="$wrkcpu" -v counted=$((r1 - r0)) -v lines=$((l1 - l0)) -v bytes=$((b1 - b0)) -v gc="$gc" '/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
    sec = r["duration_us"] / 1e6
    split(m0, a, " "); split(m1, b, " "); split(wrkcpu, w, " ")
    busy = (b[2] > a[2] ? ncpu * (b[1] - a[1]) / (b[2] - a[2]) : 0)
    printf "%s\t%s\t%.0f\t%s\t%s\t%s\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%.1f\n", n, c,
      r["requests"] / sec, r["p50_us"], r["p99_us"], r["errors"],
      1e6 * cpu / hz / r["requests"], busy - cpu / hz / sec - (w[1] + w[2]) / sec,
      r["requests"], counted, lines, bytes, gc, 1e6 * sys / hz / r["requests"]
  }' "$out" >>"$TMP/results.tsv"
  tail -n 1 "$TMP/results.tsv" | awk -F'\t' '{ printf "  run %2s %-8s %8.0f req/s %6.1f µs/req\n", $1, $2, $3, $7 }' >&2
}

# --- the runs ----------------------------------------------------------------------

: >"$TMP/results.tsv"
n=0
total=$((ROUNDS * ${#cases[@]}))
for r in $(seq "$ROUNDS"); do
  # Each round starts one case further on (off file tmpfs devnull, then
  # file tmpfs devnull off, …), so no case is always first after a pause.
  for i in $(seq 0 $((${#cases[@]} - 1))); do
    c="${cases[$(((i + r - 1) % ${#cases[@]}))]}"
    n=$((n + 1))
    run_case "$n" "$c"
    # The last server stays up for the counter check and the scrapes.
    if [ "$n" -lt "$total" ]; then
      stop_server
      if [ -z "${KEEP:-}" ] && [ -f "$sink" ]; then rm -f "$sink"; fi
    fi
  done
done
echo >&2

# --- the last server: every answer counted?, and /metrics scrapes ------------------
# Everything this server answered on the data plane for the site: the
# readiness probe of the home page (one when the site is already live), the
# 1,000 warm-up pages, the untimed and the timed wrk run.

last_case="$c"
wrk_req() { awk '/^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "requests") print kv[2] } }' "$1"; }
made=$((1 + 1000 + $(wrk_req "$TMP/warm-$n-$last_case.txt") + $(wrk_req "$TMP/wrk-$n-$last_case.txt")))
final_count="$(counted)"
curl -sf "$admin/metrics" | grep -E '^sitehost_http_(requests|response_bytes)_total' >"$TMP/counters.txt"

: >"$TMP/scrapes.txt"
for _ in $(seq "$SCRAPES"); do
  curl -sf -o /dev/null -w '%{time_total} %{size_download}\n' "$admin/metrics" >>"$TMP/scrapes.txt"
done
: >"$TMP/scrapes-gzip.txt"
for _ in $(seq "$SCRAPES"); do
  curl -sf -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total} %{size_download}\n' "$admin/metrics" >>"$TMP/scrapes-gzip.txt"
done
median_ms() { sort -n -k1,1 "$1" | awk '{ t[NR] = $1 } END { printf "%.2f", (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2) * 1000 }'; }
series="$(curl -sf "$admin/metrics" | grep -cv '^#')"
stop_server

# --- summary -------------------------------------------------------------------------

echo "Cases: off = access_log: false (metrics only); file = JSON access log to a file in $(dirname "$TMP") ($(df --output=fstype "$TMP" | tail -n 1));"
echo "tmpfs = JSON access log to a file in /dev/shm; devnull = access log to /dev/null (a character device: slog's text format)."
echo
awk -F'\t' '
  BEGIN {
    printf "| run | case | req/s | p50 | p99 | errors | sitehost CPU µs/req (system) | other load | wrk requests | counted (/metrics) | log lines | bytes/line | GC ran |\n"
    printf "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
  }
  {
    printf "| %s | %s | %.0f | %.2f ms | %.2f ms | %s | %.1f (%.1f) | %.2f cores | %s | %s (%+d) | %s | %s | %s |\n",
      $1, $2, $3, $4 / 1000, $5 / 1000, $6, $7, $14, $8, $9, $10, $10 - $9, ($11 > 0 ? $11 : "-"),
      ($11 > 0 ? sprintf("%.0f", $12 / $11) : "-"), ($13 == "0" ? "" : $13)
    c = $2; cnt[c]++; rps[c] += $3; p50[c] += $4; p99[c] += $5; cpu[c] += $7; sys[c] += $14
    if (!(c in lo) || $3 < lo[c]) lo[c] = $3
    if (!(c in hi) || $3 > hi[c]) hi[c] = $3
    if (!(c in clo) || $7 < clo[c]) clo[c] = $7
    if (!(c in chi) || $7 > chi[c]) chi[c] = $7
    rl[c] = rl[c] (rl[c] == "" ? "" : ", ") sprintf("%.0f", $3)
    if ($11 > 0) { lines[c] += $11; bytes[c] += $12 }
    if (!seen[c]++) order[++nc] = c
  }
  END {
    printf "\n| case | req/s per round | mean | vs off | p50 | p99 | sitehost CPU µs/req (mean, range) | vs off | of which system | log bytes/request |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= nc; i++) {
      c = order[i]; k = cnt[c]
      printf "| %s | %s | %.0f | %s | %.2f ms | %.2f ms | %.1f (%.1f–%.1f) | %s | %.1f | %s |\n", c, rl[c], rps[c] / k,
        ("off" in cnt ? sprintf("%.1f%%", 100 * (rps[c] / k) / (rps["off"] / cnt["off"])) : "-"),
        p50[c] / k / 1000, p99[c] / k / 1000, cpu[c] / k, clo[c], chi[c],
        ("off" in cnt ? sprintf("%+.1f µs", cpu[c] / k - cpu["off"] / cnt["off"]) : "-"), sys[c] / k,
        (lines[c] > 0 ? sprintf("%.0f", bytes[c] / lines[c]) : "-")
    }
  }' "$TMP/results.tsv"
echo
echo "sitehost CPU µs/req: the server's user + system time over the timed run, per request wrk completed (system: the kernel's part)."
echo "other load: busy cores on the machine that were neither sitehost nor wrk (other work; for file, also the kernel's writeback)."
echo "counted: the change in sitehost_http_requests_total{site=\"bench\"} over the timed run (scraped before and after it);"
echo "the difference from wrk's count is requests answered after wrk stopped counting (in flight at its stop, at most $CONNS)."
echo "log lines / bytes per line: the change in the log file over the timed run (file and tmpfs)."
echo "GC ran: the server's storage GC (random, within 5 min of start) logged during the run; ? = its log went to /dev/null."
echo
for c in file tmpfs; do
  [ -s "$TMP/sample-$c.json" ] || continue
  echo "Sample access-log line ($c, $(wc -c <"$TMP/sample-$c.json") bytes with the newline):"
  cat "$TMP/sample-$c.json"
  echo
done
echo "Counters on the last server (run $n, $last_case), after every request:"
sed 's/^/  /' "$TMP/counters.txt"
echo "  sum for site=\"bench\": $final_count; requests the script made to it: $made (1 readiness probe of the home page,"
echo "  1,000 warm-up pages, $(wrk_req "$TMP/warm-$n-$last_case.txt") untimed + $(wrk_req "$TMP/wrk-$n-$last_case.txt") timed wrk requests); difference $((final_count - made))"
echo
echo "GET /metrics on the admin listener, $SCRAPES scrapes each, idle server, curl's time_total:"
echo "  plain: median $(median_ms "$TMP/scrapes.txt") ms, $(tail -n 1 "$TMP/scrapes.txt" | cut -d' ' -f2) bytes;" \
  "gzip: median $(median_ms "$TMP/scrapes-gzip.txt") ms, $(tail -n 1 "$TMP/scrapes-gzip.txt" | cut -d' ' -f2) bytes; $series samples"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
