#!/usr/bin/env bash
# Serving throughput from the warm cache, storage.kind fs vs s3 (MinIO), in
# the same run: wrk on loopback against two sitehost processes serving the
# same generated site (see bench/README.md).
#
# Needs go, git, curl, wrk (installed with apt-get when missing) and a MinIO
# server binary: $SITEHOST_MINIO, else `minio` on PATH, else
# $(go env GOPATH)/bin/minio (`go install github.com/minio/minio@latest`).
#
# Knobs (environment): DURATION (15s) per wrk run, THREADS (2), CONNS (32),
# ROUNDS (2; each round runs fs then s3, so noise shows as spread between
# rounds of the same storage), SMALL (1: also a run of index.html alone),
# KEEP (1: keep the scratch folder). Scratch goes to $TMPDIR, default /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-2}"
SMALL="${SMALL:-1}"
LUA="$PWD/bench/serve-s3-vs-fs.lua"
HOST=bench.test

# Stray MINIO_* variables from the caller could change how MinIO starts.
for v in $(compgen -e | grep '^MINIO_' || true); do unset "$v"; done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sitehost-serve-bench.XXXXXX")"
# shellcheck source=bench/lib.sh
. bench/lib.sh # we are at the repository root (cd above)

# --- tools ---------------------------------------------------------------

need_wrk
minio="${SITEHOST_MINIO:-$(command -v minio || true)}"
[ -n "$minio" ] || minio="$(go env GOPATH | cut -d: -f1)/bin/minio"
[ -x "$minio" ] || die "no MinIO server binary: go install github.com/minio/minio@latest, or set SITEHOST_MINIO"

machine_info
echo "wrk:   $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "minio: $minio"
echo "tmp:   $TMP"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk:   -t$THREADS -c$CONNS -d$DURATION, Host: $HOST"
echo

# One build, used by both servers.
go build -tags extended -o "$TMP/sitehost" ./cmd/sitehost

# --- the site --------------------------------------------------------------
# 1,000 HTML pages of ~8 KiB at /posts/NNNN/ (index.html resolution, as a
# Hugo site has them), 25 CSS + 25 JS files of ~30 KiB, 20 images of 200 KiB
# (random bytes), and a home page. About 14 MB: every file is ≤ 256 KiB and
# the lot fits the default 64 MiB memory tier, so both servers answer every
# request from memory once warm.

repo="$TMP/repo"
mkdir -p "$repo/assets" "$repo/img"
seq -f "$repo/posts/%04g" 0 999 | xargs mkdir -p
awk -v dir="$repo" 'BEGIN {
  srand(1)
  nw = split("the a of static site is built from git and served out object storage with cache in front every deploy immutable pointer manifest blob content hash request answer page post tag archive reader writer morning evening river mountain window garden", w, " ")
  for (i = 0; i < 1000; i++) {
    f = sprintf("%s/posts/%04d/index.html", dir, i)
    s = sprintf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Post %d</title>\n<link rel=\"stylesheet\" href=\"/assets/site-%02d.css\"><script src=\"/assets/app-%02d.js\" defer></script></head>\n<body><main><h1>Post %d</h1>\n", i, i % 25, i % 25, i)
    while (length(s) < 8000) {
      p = "<p>"
      for (k = 0; k < 60; k++) p = p w[int(rand() * nw) + 1] " "
      s = s p "</p>\n"
    }
    s = s sprintf("<p><a href=\"/posts/%04d/\">next</a> <img src=\"/img/photo-%02d.jpg\" alt=\"\"></p></main></body></html>\n", (i + 1) % 1000, i % 20)
    printf "%s", s > f
    close(f)
  }
  for (i = 0; i < 25; i++) {
    f = sprintf("%s/assets/site-%02d.css", dir, i); s = ""
    for (k = 0; length(s) < 30700; k++) s = s sprintf(".c%d-%d { margin: %dpx %dpx; color: #%06x; font: %dpx/1.5 system-ui, sans-serif; }\n", i, k, k % 17, k % 23, int(rand() * 16777215), 12 + k % 9)
    printf "%s", s > f; close(f)
    f = sprintf("%s/assets/app-%02d.js", dir, i); s = ""
    for (k = 0; length(s) < 30700; k++) s = s sprintf("function f%d_%d(a, b) { return document.querySelectorAll(\".c%d-%d\").length * a + b * %d; }\n", i, k, i, k, k)
    printf "%s", s > f; close(f)
  }
  f = dir "/index.html"
  s = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bench</title><link rel=\"stylesheet\" href=\"/assets/site-00.css\"></head>\n<body><h1>bench</h1><ul>\n"
  for (i = 0; i < 50; i++) s = s sprintf("<li><a href=\"/posts/%04d/\">Post %d</a></li>\n", i, i)
  printf "%s</ul><img src=\"/img/photo-00.jpg\" alt=\"\"></body></html>\n", s > f
  close(f)
}'
for i in $(seq -w 0 19); do head -c 204800 /dev/urandom >"$repo/img/photo-$i.jpg"; done
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "bench site"
site_bytes="$(find "$repo" -path "$repo/.git" -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"

# Every URL once (the warm-up), and the wrk mix: per 16 pages, the home
# page once, 3 CSS/JS files and 1 image, each list taken in rotation, so
# requests are ~81% HTML, ~14% CSS/JS, ~5% images (~26% / 21% / 53% of the
# bytes: the images dominate the transfer).
{ echo /; seq -f "/posts/%04g/" 0 999; (cd "$repo" && ls assets/* img/*) | sed 's|^|/|'; } >"$TMP/all.paths"
(cd "$repo" && ls assets/*) | sed 's|^|/|' >"$TMP/assets.list"
(cd "$repo" && ls img/*) | sed 's|^|/|' >"$TMP/images.list"
awk -v assets="$TMP/assets.list" -v images="$TMP/images.list" 'BEGIN {
  while ((getline l < assets) > 0) a[na++] = l
  while ((getline l < images) > 0) g[ng++] = l
  for (i = 0; i < 1000; i++) {
    printf "/posts/%04d/\n", i
    if (i % 16 == 0) print "/"
    if (i % 16 == 3 || i % 16 == 8 || i % 16 == 13) print a[ia++ % na]
    if (i % 16 == 15) print g[ig++ % ng]
  }
}' >"$TMP/mix.paths"
echo / >"$TMP/index.paths"
echo "site:  $(wc -l <"$TMP/all.paths") files, $((site_bytes / 1024)) KiB; mix of $(wc -l <"$TMP/mix.paths") requests per cycle"

# --- MinIO -------------------------------------------------------------------

ak="bench-$RANDOM$RANDOM"
sk="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mport="$(free_port)"
endpoint="127.0.0.1:$mport"
mkdir -p "$TMP/minio/data" "$TMP/minio/certs"
# An empty certs dir, so ~/.minio/certs never turns TLS on; CI_CD lets the
# data dir sit on the root disk; public metrics let us count the requests
# that reach the bucket during each run.
MINIO_ROOT_USER="$ak" MINIO_ROOT_PASSWORD="$sk" MINIO_BROWSER=off MINIO_UPDATE=off \
  MINIO_CI_CD=1 MINIO_PROMETHEUS_AUTH_TYPE=public \
  "$minio" server "$TMP/minio/data" --address "$endpoint" \
  --console-address "127.0.0.1:$(free_port)" --certs-dir "$TMP/minio/certs" --quiet \
  >"$TMP/minio.log" 2>&1 &
pids+=($!)
wait_ok minio "$!" "$TMP/minio.log" "http://$endpoint/minio/health/live"
# sitehost refuses to start on a missing bucket.
curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" "http://$endpoint/bench" >/dev/null \
  || die "creating bucket bench on $endpoint"

# S3 requests MinIO has answered so far (all APIs). The v3 endpoint counts
# live; v2's is cached for 10 s.
minio_requests() {
  curl -sf "http://$endpoint/minio/metrics/v3/api/requests" |
    awk '/^minio_api_requests_total\{/ { s += $NF } END { printf "%d\n", s }'
}

# --- the two servers -----------------------------------------------------------

export SITEHOST_API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")"  # 32+ characters, as serve requires
declare -A http_port log_of pid_of
for kind in fs s3; do
  http_port[$kind]="$(free_port)"
  if [ "$kind" = s3 ]; then
    storage="  storage:
    kind: s3
    s3: {endpoint: \"$endpoint\", bucket: bench, access_key_env: S3_ACCESS_KEY, secret_key_env: S3_SECRET_KEY}"
  else
    storage="  storage: {kind: fs}"
  fi
  # poll_interval 0 and no previews: after the first sync nothing but the
  # benchmark's requests runs in either server (save GC, flagged below).
  cat >"$TMP/$kind.yaml" <<EOF
server:
  data_dir: "$TMP/data-$kind"
  http: "127.0.0.1:${http_port[$kind]}"
  admin: "127.0.0.1:$(free_port)"
  preview_domain: localhost
  poll_interval: 0s
  api_token_env: SITEHOST_API_TOKEN
$storage
sites:
  - name: bench
    repo: "$repo"
    domains: [$HOST]
    build: {tool: none}
    previews: {enabled: false}
EOF
  "$TMP/sitehost" validate -c "$TMP/$kind.yaml" >/dev/null
  log_of[$kind]="$TMP/sitehost-$kind.log"
  S3_ACCESS_KEY="$ak" S3_SECRET_KEY="$sk" "$TMP/sitehost" serve -c "$TMP/$kind.yaml" >"${log_of[$kind]}" 2>&1 &
  pid_of[$kind]=$!
  pids+=($!)
done
# The first sync runs at start-up; the home page answers once it is live.
for kind in fs s3; do
  wait_ok "sitehost ($kind)" "${pid_of[$kind]}" "${log_of[$kind]}" "http://127.0.0.1:${http_port[$kind]}/" -H "Host: $HOST"
done

# --- warm-up ---------------------------------------------------------------------
# Every URL once over one connection; each must be 200 and the bodies must
# add up to the site's size (so s3 serves the same bytes as fs).
for kind in fs s3; do
  awk -v base="http://127.0.0.1:${http_port[$kind]}" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, $0 }' \
    "$TMP/all.paths" >"$TMP/warm-$kind.curl"
  curl -s -H "Host: $HOST" -w '%{http_code} %{size_download}\n' -K "$TMP/warm-$kind.curl" >"$TMP/warm-$kind.out"
  bad="$(awk '$1 != 200' "$TMP/warm-$kind.out" | wc -l)"
  got="$(awk '{ s += $2 } END { print s }' "$TMP/warm-$kind.out")"
  [ "$bad" -eq 0 ] || die "$kind: $bad URLs did not answer 200 while warming"
  [ "$got" -eq "$site_bytes" ] || die "$kind: warm-up read $got bytes, the site has $site_bytes"
  # A short untimed wrk run: connections, Go's heap and the CPU caches
  # settle before anything is measured.
  wrk -t"$THREADS" -c"$CONNS" -d3s -H "Host: $HOST" -s "$LUA" "http://127.0.0.1:${http_port[$kind]}" -- "$TMP/mix.paths" >/dev/null
done
echo "warm:  every URL 200 from both, $site_bytes bytes each; s3 disk cache holds $(find "$TMP/data-s3/cache/blobs" -type f | wc -l) blobs"
echo

# --- the runs ----------------------------------------------------------------------

# run_wrk N KIND MIX: one timed wrk run; appends a line to results.tsv.
run_wrk() {
  local n=$1 kind=$2 mix=$3 out="$TMP/wrk-$1-$2-$3.txt" gc0 gc1 s3a=- s3b
  gc0="$(grep -c 'garbage collected' "${log_of[$kind]}" || true)"
  [ "$kind" = s3 ] && s3a="$(minio_requests)"
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 5s -H "Host: $HOST" -s "$LUA" \
    "http://127.0.0.1:${http_port[$kind]}" -- "$TMP/$mix.paths" >"$out"
  gc1="$(grep -c 'garbage collected' "${log_of[$kind]}" || true)"
  if [ "$kind" = s3 ]; then s3b="$(minio_requests)"; s3a=$((s3b - s3a)); fi
  grep -q '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT"; }
  # RESULT key=value … → one tab-separated line: run kind mix rps B/s p50 p99 errors bucket-reqs gc
  awk -v n="$n" -v kind="$kind" -v mix="$mix" -v s3="$s3a" -v gc=$((gc1 - gc0)) '/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
    sec = r["duration_us"] / 1e6
    printf "%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\n", n, kind, mix,
      r["requests"] / sec, r["bytes"] / sec, r["p50_us"], r["p99_us"], r["errors"], s3, gc
  }' "$out" >>"$TMP/results.tsv"
  tail -n 1 "$TMP/results.tsv" | awk -F'\t' '{ printf "  run %s %-2s %-5s %8.0f req/s\n", $1, $2, $3, $4 }' >&2
}

: >"$TMP/results.tsv"
n=0
for _ in $(seq "$ROUNDS"); do
  for kind in fs s3; do n=$((n + 1)); run_wrk "$n" "$kind" mix; done
done
if [ "$SMALL" = 1 ]; then
  for kind in fs s3; do n=$((n + 1)); run_wrk "$n" "$kind" index; done
fi
echo >&2

# --- summary -------------------------------------------------------------------------

echo "Summary (mix = the weighted page/asset/image rotation; index = / only, $(wc -c <"$repo/index.html") bytes):"
echo
awk -F'\t' '
  BEGIN {
    printf "| run | storage | paths | req/s | transfer/s | p50 | p99 | errors | bucket reqs | GC ran |\n"
    printf "|---:|---|---|---:|---:|---:|---:|---:|---:|---|\n"
  }
  {
    printf "| %s | %s | %s | %.0f | %.1f MiB/s | %.2f ms | %.2f ms | %s | %s | %s |\n",
      $1, $2, $3, $4, $5 / 1048576, $6 / 1000, $7 / 1000, $8, $9, ($10 > 0 ? "yes" : "")
    k = $3 SUBSEP $2; cnt[k]++; rps[k] += $4; p99[k] += $7
    if (!(k in lo) || $4 < lo[k]) lo[k] = $4
    if (!(k in hi) || $4 > hi[k]) hi[k] = $4
    if (!seen[$3]++) mixes[++nm] = $3
  }
  END {
    printf "\n| paths | fs req/s (mean, range) | s3 req/s (mean, range) | s3 / fs | fs p99 | s3 p99 |\n"
    printf "|---|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= nm; i++) {
      m = mixes[i]; f = m SUBSEP "fs"; s = m SUBSEP "s3"
      if (!cnt[f] || !cnt[s]) continue
      printf "| %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.1f%% | %.2f ms | %.2f ms |\n", m,
        rps[f] / cnt[f], lo[f], hi[f], rps[s] / cnt[s], lo[s], hi[s],
        100 * (rps[s] / cnt[s]) / (rps[f] / cnt[f]), p99[f] / cnt[f] / 1000, p99[s] / cnt[s] / 1000
    }
  }' "$TMP/results.tsv"
echo
echo "bucket reqs: S3 requests MinIO answered during the run (the s3 server re-reads the"
echo "channel pointer every 2 s; blobs and the manifest come from its cache)."
echo "GC ran: the server's first garbage collection (random, within 5 min of start) fell in the run."
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
