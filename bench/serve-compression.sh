#!/usr/bin/env bash
# Serving precompressed variants (identity, gzip, br) and Netlify rules
# (_redirects, _headers) over real sockets, and what precompressing costs a
# publish: wrk on loopback against one sitehost (storage fs) serving a
# generated site (see bench/README.md).
#
# Needs go, git, curl and wrk (installed with apt-get when missing).
#
# Knobs (environment): DURATION (15s) per wrk run, THREADS (2), CONNS (32),
# ROUNDS (2; each round runs every case once, in turn, so noise shows as
# spread between rounds of the same case), KEEP (1: keep the scratch
# folder). Scratch goes to $TMPDIR, default /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-2}"
# The s3-vs-fs wrk script does what this one needs: cycle through a paths
# file (the -H headers go into every request) and print the RESULT line.
LUA="$PWD/bench/serve-s3-vs-fs.lua"
HOST=bench.test

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sitehost-compression-bench.XXXXXX")"
# shellcheck source=bench/lib.sh
. bench/lib.sh # we are at the repository root (cd above)

# --- tools ---------------------------------------------------------------

need_wrk

machine_info
echo "wrk:   $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "tmp:   $TMP"
echo "load:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk:   -t$THREADS -c$CONNS -d$DURATION, Host: $HOST"
echo

go build -tags extended -o "$TMP/sitehost" ./cmd/sitehost

# --- the site --------------------------------------------------------------
# 1,000 HTML pages of ~8 KiB at /posts/NNNN/ (a blog template around varied
# text: pseudo-words drawn log-uniformly from a 3,000-word vocabulary, so
# frequent words repeat as in natural language, with links, emphasis and
# numbers), 25 CSS + 25 JS files of ~30 KiB, a home page, an SPA shell at
# /app/index.html and a robots.txt below the 1 KiB compression threshold.
# _redirects has 200 rules: 120 literal 301s (old blog URLs), 20 literal
# 302 short links to another site, 20 placeholder and 20 splat 301s, 15
# query-matched rules, 3 forced, one `/app/* /app/index.html 200` and a
# country-conditioned one. _headers has five blocks, one of them `/*`.
#
# The site is published twice: a placeholder commit when sitehost starts,
# then the real site through the admin API's sync, which is timed.

repo="$TMP/repo"
mkdir -p "$repo"
echo '<!doctype html><title>placeholder</title>' >"$repo/index.html"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "placeholder"

mkdir -p "$repo/assets" "$repo/app"
seq -f "$repo/posts/%04g" 0 999 | xargs mkdir -p
awk -v dir="$repo" -v tmp="$TMP" 'BEGIN {
  srand(1)
  ns = split("ka ti ro men sa lu de ver on pa ist co re an mo the ing al tr ex per ly ne ci bo ge fa st ul wh ra to ia ment ed", syl, " ")
  nw = 3000
  for (k = 1; k <= nw; k++) {
    s = ""
    n = 1 + int(rand() * 3) + int(rand() * 2)
    for (j = 0; j < n; j++) s = s syl[int(rand() * ns) + 1]
    w[k] = s
  }
  lognw = log(nw)
  for (i = 0; i < 1000; i++) {
    f = sprintf("%s/posts/%04d/index.html", dir, i)
    title = word() " " word() " " word()
    s = sprintf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>%s | bench blog</title><meta name=\"description\" content=\"%s %s %s\">\n<link rel=\"canonical\" href=\"https://bench.test/posts/%04d/\"><link rel=\"stylesheet\" href=\"/assets/site-%02d.css\">\n<script src=\"/assets/app-%02d.js\" defer></script></head>\n<body><header class=\"site-header\"><a class=\"logo\" href=\"/\">bench blog</a><nav><ul>\n", title, word(), word(), word(), i, i % 25, i % 25)
    for (k = 1; k <= 6; k++) { x = word(); s = s sprintf("<li class=\"nav-item\"><a class=\"nav-link\" href=\"/%s/\">%s</a></li>\n", x, x) }
    s = s sprintf("</ul></nav></header>\n<main><article class=\"post\"><h1 class=\"post-title\">%s</h1>\n<p class=\"post-meta\"><time datetime=\"20%02d-%02d-%02d\">%02d/%02d/20%02d</time> · %d min read</p>\n", title, 15 + i % 10, 1 + i % 12, 1 + i % 28, 1 + i % 28, 1 + i % 12, 15 + i % 10, 2 + int(rand() * 12))
    while (length(s) < 7700) {
      if (rand() < 0.2) s = s sprintf("<h2 id=\"%s-%d\">%s %s</h2>\n", word(), length(s), word(), word())
      s = s para()
    }
    s = s sprintf("</article></main>\n<footer class=\"site-footer\"><p><a href=\"/posts/%04d/\">previous</a> · <a href=\"/posts/%04d/\">next</a></p>\n<p>© bench blog · <a href=\"/feed.xml\">RSS</a></p></footer></body></html>\n", (i + 999) % 1000, (i + 1) % 1000)
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
  printf "%s</ul></body></html>\n", s > f
  close(f)
  f = dir "/app/index.html"
  s = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>app</title><link rel=\"stylesheet\" href=\"/assets/site-01.css\"><script src=\"/assets/app-01.js\" defer></script></head>\n<body><div id=\"root\"><noscript>\n"
  while (length(s) < 2000) s = s para()
  printf "%s</noscript></div></body></html>\n", s > f
  close(f)
  printf "User-agent: *\nAllow: /\nSitemap: https://bench.test/sitemap.xml\n" > (dir "/robots.txt")
  close(dir "/robots.txt")

  # _redirects, and the request paths of the wrk cases that hit rules.
  r = dir "/_redirects"; lit = tmp "/redirect.paths"; spa = tmp "/rewrite.paths"
  print "# Old blog URLs, short links, moved sections, an SPA." > r
  for (k = 0; k < 120; k++) {
    p = sprintf("/blog/20%02d/%s-%s-%d", 15 + k % 10, word(), word(), k)
    printf "%s  /posts/%04d/  301\n", p, (k * 7) % 1000 > r
    print p > lit
    if (k == 59) {
      for (j = 0; j < 20; j++) printf "/go/%s-%d  https://example.com/%s?ref=bench  302\n", word(), j, word() > r
      for (j = 0; j < 20; j++) printf "/%s-%d/:year/:slug  /posts/:slug/  301\n", word(), j > r
    }
  }
  for (j = 0; j < 20; j++) printf "/docs-v%d/*  /docs/:splat  301\n", j > r
  for (j = 0; j < 15; j++) printf "/search  q=:q  page=%d  /archive/?q=:q&p=%d  301\n", j, j > r
  printf "/private/*  /  302!\n/admin/*  /  302!\n/wp-login.php  /  410!\n" > r
  printf "/  /fr/  302  Country=fr\n" > r
  printf "/app/*  /app/index.html  200\n" > r
  close(r)
  for (k = 0; k < 200; k++) printf "/app/%s/%d\n", word(), k > spa

  h = dir "/_headers"
  printf "/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: strict-origin-when-cross-origin\n  Permissions-Policy: interest-cohort=()\n" > h
  printf "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n" > h
  printf "/posts/*\n  Link: </assets/site-00.css>; rel=preload; as=style\n  X-Robots-Tag: index\n" > h
  printf "/app/*\n  Cache-Control: no-cache\n  Content-Security-Policy: default-src '"'"'self'"'"'\n" > h
  printf "/robots.txt\n  Cache-Control: public, max-age=3600\n" > h
  close(h)
}
function word(   k) { k = int(exp(rand() * lognw)); if (k < 1) k = 1; if (k > nw) k = nw; return w[k] }
function para(   p, n, m, j, t, x, u) {
  p = "<p>"
  n = 3 + int(rand() * 5)
  for (j = 0; j < n; j++) {
    m = 6 + int(rand() * 18)
    for (t = 0; t < m; t++) {
      x = word()
      if (t == 0) x = toupper(substr(x, 1, 1)) substr(x, 2)
      u = rand()
      if (u < 0.025) x = sprintf("<a href=\"/posts/%04d/\">%s</a>", int(rand() * 1000), x)
      else if (u < 0.05) x = "<em>" x "</em>"
      else if (u < 0.075) x = x " " int(rand() * 10000)
      p = p (t ? " " : "") x
    }
    p = p (j < n - 1 ? ". " : ".")
  }
  return p "</p>\n"
}'

# The HTML pages, the CSS/JS files, and the wrk mix of the encoding cases:
# per 16 pages, 3 CSS/JS files in rotation and the home page once (82% of
# the requests are pages, 15% CSS/JS).
seq -f "/posts/%04g/" 0 999 >"$TMP/html.paths"
(cd "$repo" && ls assets/*) | sed 's|^|/|' >"$TMP/assets.paths"
awk -v assets="$TMP/assets.paths" 'BEGIN {
  while ((getline l < assets) > 0) a[na++] = l
  for (i = 0; i < 1000; i++) {
    printf "/posts/%04d/\n", i
    if (i % 16 == 0) print "/"
    if (i % 16 == 3 || i % 16 == 8 || i % 16 == 13) print a[ia++ % na]
  }
}' >"$TMP/mix.paths"
echo /robots.txt >"$TMP/small.paths"
site_bytes="$(find "$repo" -path "$repo/.git" -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"
echo "site:  $(find "$repo" -path "$repo/.git" -prune -o -type f -print | wc -l) files, $((site_bytes / 1024)) KiB;" \
  "$(grep -cv '^#' "$repo/_redirects") redirect rules, $(grep -c '^/' "$repo/_headers") header blocks;" \
  "mix of $(wc -l <"$TMP/mix.paths") requests per cycle"

# --- the server -----------------------------------------------------------------

export SITEHOST_API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")"  # 32+ characters, as serve requires
http_port="$(free_port)"
admin_port="$(free_port)"
# poll_interval 0 and no previews: after the syncs nothing but the
# benchmark's requests runs in the server (save GC, flagged below).
cat >"$TMP/sitehost.yaml" <<EOF
server:
  data_dir: "$TMP/data"
  http: "127.0.0.1:$http_port"
  admin: "127.0.0.1:$admin_port"
  preview_domain: localhost
  poll_interval: 0s
  api_token_env: SITEHOST_API_TOKEN
  storage: {kind: fs}
sites:
  - name: bench
    repo: "$repo"
    domains: [$HOST]
    build: {tool: none}
    previews: {enabled: false}
EOF
"$TMP/sitehost" validate -c "$TMP/sitehost.yaml" >/dev/null
log="$TMP/sitehost.log"
"$TMP/sitehost" serve -c "$TMP/sitehost.yaml" >"$log" 2>&1 &
pid=$!
pids+=($!)
base="http://127.0.0.1:$http_port"
api="http://127.0.0.1:$admin_port/api/v1/sites/bench"
auth=(-H "Authorization: Bearer $SITEHOST_API_TOKEN")

# The first sync runs at start-up and publishes the placeholder (the site's
# files are written but not committed yet); the home page answers once it
# is live.
wait_ok sitehost "$pid" "$log" "$base/" -H "Host: $HOST"
# The API's JSON, without its indentation, for grep.
api_get() { curl -sf "${auth[@]}" "$api$1" | tr -d ' \n'; }
live_commit() { api_get "" | grep -o '"live_commit":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4; }
for _ in $(seq 100); do [ "$(live_commit)" = "$(git -C "$repo" rev-parse HEAD)" ] && break; sleep 0.05; done
[ "$(live_commit)" = "$(git -C "$repo" rev-parse HEAD)" ] || die "the placeholder is not live"
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "bench site"
site_commit="$(git -C "$repo" rev-parse HEAD)"

# --- publish: sync request → live ----------------------------------------------
# The clock starts before POST /sync (as a webhook would) and stops when the
# last page answers 200 (it is a 404 on the placeholder), polled every 10 ms.

t0="$(date +%s%N)"
curl -sf -X POST "${auth[@]}" "$api/sync" >/dev/null || die "POST $api/sync"
for _ in $(seq 12000); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "$base/posts/0999/")" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || { tail -n 40 "$log" >&2; die "sitehost exited"; }
  sleep 0.01
done
t1="$(date +%s%N)"
[ "$(live_commit)" = "$site_commit" ] || die "the site's commit is not live after the sync"
publish_ms=$(((t1 - t0) / 1000000))
deploy="$(api_get "" | grep -o '"live_deploy":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4)"
# From the server's log (JSON lines) of this sync: the live line's took
# (from when the sync began), the upload's counts, and the phases between
# the building, uploaded and live lines.
took="$(grep '"msg":"live"' "$log" | tail -n 1 | grep -o '"took":"[^"]*"' | cut -d'"' -f4)"
uploaded="$(grep '"msg":"uploaded"' "$log" | tail -n 1)"
field() { grep -o "\"$1\":[0-9]*" <<<"$uploaded" | cut -d: -f2; }
at_ms() { date -d "$(grep "\"msg\":\"$1\"" "$log" | tail -n 1 | grep -o '"time":"[^"]*"' | cut -d'"' -f4)" +%s%3N; }
live_ms="$(at_ms live)"
# took is a Go duration: 850ms, 26.3s, 1m2.5s.
took_ms="$(awk -v t="$took" 'BEGIN {
  if (t ~ /ms$/) { print int(t); exit }
  m = 0
  if (i = index(t, "m")) { m = substr(t, 1, i - 1); t = substr(t, i + 1) }
  print int((m * 60 + t) * 1000)
}')"
pre_ms=$(($(at_ms building) - (live_ms - took_ms)))
upload_ms=$(($(at_ms uploaded) - $(at_ms building)))
flip_ms=$((live_ms - $(at_ms uploaded)))
rules_json="$(api_get "/deploys/$deploy")"
n_redirects="$(grep -o '"redirects":[0-9]*' <<<"$rules_json" | tail -n 1 | cut -d: -f2)"
n_headers="$(grep -o '"headers":[0-9]*' <<<"$rules_json" | tail -n 1 | cut -d: -f2)"
grep -q '"errors":\[\]' <<<"$rules_json" || { echo "$rules_json" >&2; die "the deploy has rule errors"; }
echo "publish: sync request → last page live in $publish_ms ms (server log: took $took: fetch+export" \
  "$pre_ms ms, hash+compress+upload $upload_ms ms, upload→live $flip_ms ms);" \
  "$(field files) files, $(field blobs_uploaded) blobs uploaded ($(($(field bytes_uploaded) / 1024)) KiB);" \
  "rules: $n_redirects redirects, $n_headers header rules, no errors"

# --- warm-up, and the sizes of every encoding ----------------------------------------
# Every page and asset once per encoding over one connection; each must be
# 200 in the encoding asked for. The bodies as sent (curl does not decode
# them) are the sizes.

for enc in identity gzip br; do
  hdr=()
  [ "$enc" != identity ] && hdr=(-H "Accept-Encoding: $enc")
  cat "$TMP/html.paths" "$TMP/assets.paths" |
    awk -v base="$base" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, $0 }' >"$TMP/warm.curl"
  curl -s -H "Host: $HOST" "${hdr[@]}" -w '%{http_code} %{size_download} %header{content-encoding}\n' \
    -K "$TMP/warm.curl" >"$TMP/warm-$enc.out"
  want="$enc"
  [ "$enc" = identity ] && want=""
  bad="$(awk -v want="$want" '$1 != 200 || $3 != want' "$TMP/warm-$enc.out" | wc -l)"
  [ "$bad" -eq 0 ] || die "$enc: $bad of the pages and assets did not answer 200 with Content-Encoding '$want'"
done
# Rules: every literal redirect answers 301 with its Location, every SPA path
# 200 with the shell, robots.txt 200 unencoded.
awk -v base="$base" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, $0 }' "$TMP/redirect.paths" >"$TMP/warm.curl"
curl -s -H "Host: $HOST" -w '%{http_code} %{redirect_url}\n' -K "$TMP/warm.curl" >"$TMP/warm-redirect.out"
[ "$(awk '$1 == 301 && $2 ~ /\/posts\/[0-9]+\/$/' "$TMP/warm-redirect.out" | wc -l)" -eq "$(wc -l <"$TMP/redirect.paths")" ] ||
  die "not every literal redirect answered 301 to a post (see $TMP/warm-redirect.out)"
awk -v base="$base" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, $0 }' "$TMP/rewrite.paths" >"$TMP/warm.curl"
curl -s -H "Host: $HOST" -w '%{http_code} %{size_download}\n' -K "$TMP/warm.curl" >"$TMP/warm-rewrite.out"
[ "$(awk -v n="$(wc -c <"$repo/app/index.html")" '$1 == 200 && $2 == n' "$TMP/warm-rewrite.out" | wc -l)" -eq "$(wc -l <"$TMP/rewrite.paths")" ] ||
  die "not every /app/ path answered 200 with app/index.html (see $TMP/warm-rewrite.out)"
[ "$(curl -s -o /dev/null -H "Host: $HOST" -H 'Accept-Encoding: br' -w '%{http_code} %header{content-encoding}' "$base/robots.txt")" = "200 " ] ||
  die "robots.txt is not 200 unencoded"
hdrs="$(curl -s -o /dev/null -D - -H "Host: $HOST" "$base/posts/0001/")"
if ! grep -qi '^x-frame-options: DENY' <<<"$hdrs" || ! grep -qi '^link: </assets/site-00.css>' <<<"$hdrs"; then
  echo "$hdrs" >&2
  die "_headers not applied to /posts/0001/"
fi

# The sizes. variants.go compresses the first 1 MiB of new content
# (smallest files first) at the best level (gzip 9, brotli 11) and the rest
# at the fast one (gzip 6, brotli 5): the pages are all smaller than the
# assets, so the smallest pages up to ~1 MiB (less the home page and the
# SPA shell) are the best-level ones. Ties in size are ordered by hash
# there, so the split is exact to a page or two.
# Fields: path, then code size encoding per encoding (identity has none).
paste -d' ' <(cat "$TMP/html.paths" "$TMP/assets.paths") "$TMP/warm-identity.out" "$TMP/warm-gzip.out" "$TMP/warm-br.out" |
  awk '
    { kind = ($1 ~ /^\/posts\// ? "html" : "css+js"); n[kind]++; id[kind] += $3; gz[kind] += $5; br[kind] += $8 }
    kind == "html" { print $3, $5, $8 > "/dev/stderr" }
    END {
      printf "| files | count | identity | gzip | br | gzip/identity | br/identity |\n|---|---:|---:|---:|---:|---:|---:|\n"
      for (k in n) printf "| %s | %d | %.0f KiB | %.0f KiB | %.0f KiB | %.1f%% | %.1f%% |\n", k, n[k], id[k] / 1024, gz[k] / 1024, br[k] / 1024, 100 * gz[k] / id[k], 100 * br[k] / id[k]
    }' 2>"$TMP/html-sizes" >"$TMP/sizes.md"
sort -n -k1,1 "$TMP/html-sizes" | awk -v budget=$((1 << 20)) -v small="$(($(wc -c <"$repo/index.html") + $(wc -c <"$repo/app/index.html")))" '
  BEGIN { left = budget - small }
  { lvl = ($1 <= left ? "best" : "fast"); if (lvl == "best") left -= $1; else left = 0
    n[lvl]++; id[lvl] += $1; gz[lvl] += $2; br[lvl] += $3 }
  END {
    for (l in n) printf "| html at the %s level | %d | %.0f KiB | %.0f KiB | %.0f KiB | %.1f%% | %.1f%% |\n", l, n[l], id[l] / 1024, gz[l] / 1024, br[l] / 1024, 100 * gz[l] / id[l], 100 * br[l] / id[l]
  }' | sort >>"$TMP/sizes.md"

# A short untimed wrk run per case: connections, Go's heap and the CPU
# caches settle before anything is measured.
cases=(identity gzip br redirect rewrite small)
# case_args CASE: the paths file and the headers of a case.
case_args() {
  case "$1" in
    identity) echo mix ;;
    gzip) echo mix "Accept-Encoding: gzip" ;;
    br) echo mix "Accept-Encoding: br" ;;
    redirect) echo redirect ;;
    rewrite) echo rewrite ;;
    small) echo small ;;
  esac
}
wrk_once() {
  local c=$1 d=$2 out=$3 paths hdr args=()
  read -r paths hdr <<<"$(case_args "$c")"
  [ -n "$hdr" ] && args=(-H "$hdr")
  wrk -t"$THREADS" -c"$CONNS" -d"$d" --timeout 5s -H "Host: $HOST" "${args[@]}" -s "$LUA" "$base" -- "$TMP/$paths.paths" >"$out"
}
for c in "${cases[@]}"; do wrk_once "$c" 2s /dev/null; done
echo "warm:  every page and asset 200 in identity, gzip and br; rules checked"
echo

# --- the runs ----------------------------------------------------------------------

# CPU time (clock ticks, user + system) of sitehost, and busy and total
# ticks of the whole machine: what neither wrk nor sitehost used was other
# load on the machine.
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# run_wrk N CASE: one timed wrk run; appends a line to results.tsv.
run_wrk() {
  local n=$1 c=$2 out="$TMP/wrk-$1-$2.txt" gc0 gc1 c0 c1 m0 m1 wrkcpu
  gc0="$(grep -c 'garbage collected' "$log" || true)"
  c0="$(cpu_ticks)"
  m0="$(machine_ticks)"
  wrkcpu="$( { TIMEFORMAT='%3U %3S'; time wrk_once "$c" "$DURATION" "$out"; } 2>&1 | tail -n 1)"
  c1="$(cpu_ticks)"
  m1="$(machine_ticks)"
  gc1="$(grep -c 'garbage collected' "$log" || true)"
  grep -q '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT"; }
  # → run case rps B/s p50 p99 errors gc sitehost-cpu-µs/req other-load(cores)
  awk -v n="$n" -v c="$c" -v gc=$((gc1 - gc0)) -v cpu=$((c1 - c0)) -v hz="$clk_tck" \
    -v m0="$m0" -v m1="$m1" -v ncpu="$(nproc)" -v wrkcpu="$wrkcpu" '/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
    sec = r["duration_us"] / 1e6
    split(m0, a, " "); split(m1, b, " "); split(wrkcpu, w, " ")
    busy = (b[2] > a[2] ? ncpu * (b[1] - a[1]) / (b[2] - a[2]) : 0)
    printf "%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%.2f\n", n, c,
      r["requests"] / sec, r["bytes"] / sec, r["p50_us"], r["p99_us"], r["errors"], gc,
      1e6 * cpu / hz / r["requests"], busy - cpu / hz / sec - (w[1] + w[2]) / sec
  }' "$out" >>"$TMP/results.tsv"
  tail -n 1 "$TMP/results.tsv" | awk -F'\t' '{ printf "  run %2s %-8s %8.0f req/s\n", $1, $2, $3 }' >&2
}

: >"$TMP/results.tsv"
n=0
for _ in $(seq "$ROUNDS"); do
  for c in "${cases[@]}"; do n=$((n + 1)); run_wrk "$n" "$c"; done
done
echo >&2

# --- summary -------------------------------------------------------------------------

echo "Publish of the site over the placeholder (fetch, export, hash, compress, upload, flip):"
echo "  sync request → /posts/0999/ live: $publish_ms ms (server's own figure: $took)"
echo "  fetch + export: $pre_ms ms; hash + compress + upload: $upload_ms ms; after the upload to live: $flip_ms ms"
echo "  $(field files) files, $(field blobs_uploaded) blobs uploaded ($(($(field bytes_uploaded) / 1024)) KiB: bodies and variants)"
echo
echo "Sizes (bodies as sent, $((1000 + $(wc -l <"$TMP/assets.paths"))) files):"
echo
cat "$TMP/sizes.md"
echo
echo "Cases: identity/gzip/br = the page+asset mix ($(wc -l <"$TMP/mix.paths") paths) with no Accept-Encoding,"
echo "'gzip', 'br'; redirect = $(wc -l <"$TMP/redirect.paths") literal _redirects paths (301, no body); rewrite ="
echo "$(wc -l <"$TMP/rewrite.paths") paths under /app/* (200 rewrite to the $(wc -c <"$repo/app/index.html")-byte shell, identity); small = /robots.txt"
echo "($(wc -c <"$repo/robots.txt") bytes, a file, no variants, rules still looked up)."
echo
awk -F'\t' '
  BEGIN {
    printf "| run | case | req/s | transfer/s | p50 | p99 | errors | sitehost CPU µs/req | other load | GC ran |\n"
    printf "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
  }
  {
    printf "| %s | %s | %.0f | %.1f MiB/s | %.2f ms | %.2f ms | %s | %.1f | %.2f cores | %s |\n",
      $1, $2, $3, $4 / 1048576, $5 / 1000, $6 / 1000, $7, $9, $10, ($8 > 0 ? "yes" : "")
    c = $2; cnt[c]++; rps[c] += $3; bps[c] += $4; p50[c] += $5; p99[c] += $6; cpu[c] += $9
    if (!(c in lo) || $3 < lo[c]) lo[c] = $3
    if (!(c in hi) || $3 > hi[c]) hi[c] = $3
    if (!seen[c]++) order[++nc] = c
  }
  END {
    printf "\n| case | req/s (mean, range) | vs identity | p50 | p99 | transfer/s | bytes/response | sitehost CPU µs/req |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= nc; i++) {
      c = order[i]; k = cnt[c]
      printf "| %s | %.0f (%.0f–%.0f) | %s | %.2f ms | %.2f ms | %.1f MiB/s | %.0f | %.1f |\n", c,
        rps[c] / k, lo[c], hi[c], ("identity" in cnt ? sprintf("%.1f%%", 100 * (rps[c] / k) / (rps["identity"] / cnt["identity"])) : "-"),
        p50[c] / k / 1000, p99[c] / k / 1000, bps[c] / k / 1048576, bps[c] / rps[c], cpu[c] / k
    }
  }' "$TMP/results.tsv"
echo
echo "transfer/s and bytes/response are wrk's: bodies and response headers."
echo "sitehost CPU µs/req: the server's user + system time over the run, per request."
echo "other load: busy cores on the machine that were neither sitehost nor wrk (other work)."
echo "GC ran: the server's first garbage collection (random, within 5 min of start) fell in the run."
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
