#!/usr/bin/env bash
# HTTPS serving, sitehost vs Caddy (and nginx when it can be had), in the
# same run: new-connection TLS handshakes per second and keep-alive request
# throughput, with wrk on loopback, every server serving the same files with
# the same ECDSA P-256 certificate, which sitehost obtains from a real Pebble.
#
# How it goes: sitehost serves a small generated site (build.tool none)
# with automatic HTTPS against Pebble (Let's Encrypt's test CA, really
# validating HTTP-01/TLS-ALPN-01 on loopback); once it serves
# https://bench.test, the script copies the certificate chain and key from
# sitehost's data_dir (certmagic's file storage) and gives those files to
# Caddy (`tls cert key`, file_server) and nginx (`ssl_certificate`), each
# serving a copy of the same files. It prints the TLS parameters each
# server negotiates, checks every server returns the same bytes, then runs
# wrk, interleaved (sitehost, caddy, nginx, repeat):
#
#   handshake-full     every request on a new connection (Connection:
#                      close), every TLS handshake a full one, as a new
#                      visitor's: certificate, ECDSA signature, ECDHE
#   handshake-resumed  the same, but wrk offers the previous connection's
#                      session and the server resumes it (TLS 1.3 PSK +
#                      ECDHE): what plain `wrk -H "Connection: close"` does
#   keepalive-html     keep-alive HTTP/1.1, the ~5 KiB index.html
#   keepalive-css      keep-alive HTTP/1.1, the ~30 KiB style.css
#
# wrk is used for all four. It cannot choose between full and resumed
# handshakes, so bench/tls-vs-caddy-handshakes.c (compiled here with cc,
# LD_PRELOADed into wrk) counts the handshakes of every run, full and
# resumed, and for handshake-full drops the session before each connection
# (see that file). wrk sends no ALPN, so every test is HTTP/1.1 (a browser
# would get h2 from all three; shown in the TLS table). wrk takes SNI from
# the URL and has no --resolve: bench/tls-vs-caddy.lua replaces its
# resolver with 127.0.0.1, so SNI and Host are bench.test and /etc/hosts is
# not touched. wrk and the servers share the machine's CPUs.
#
# Needs go, git, curl, openssl, wrk (installed with apt-get when missing),
# cc (for the handshake shim; without it only handshake-resumed runs, its
# kind unverified), Caddy ($SITEHOST_CADDY, else `caddy` on PATH, else
# $(go env GOPATH)/bin/caddy), and pebble + pebble-challtestsrv
# ($SITEHOST_PEBBLE_DIR, else PATH, else $(go env GOPATH)/bin; see
# internal/pebbletest). nginx is optional: the one on PATH (or
# /usr/sbin/nginx), else Debian's package is fetched with `apt-get
# download` and unpacked into the scratch folder (nothing is installed and
# no service starts); when neither works its column is skipped.
#
# Knobs (environment): DURATION (15s) per wrk run, THREADS (2), CONNS (32),
# ROUNDS (2; each round runs every test on every server, so noise shows as
# spread between rounds), WARMUP (3s; one untimed wrk run per server and
# test before the first round), NGINX (1; 0 leaves nginx out), KEEP (1:
# keep the scratch folder). Scratch goes to $TMPDIR, default /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-3s}"
NGINX="${NGINX:-1}"
LUA="$PWD/bench/tls-vs-caddy.lua"
SHIM_SRC="$PWD/bench/tls-vs-caddy-handshakes.c"
HOST=bench.test

# Stray PEBBLE_* variables from the caller change how Pebble runs
# (validation, nonces, chain length); TLS_BENCH_FULL is the shim's switch.
for v in $(compgen -e | grep -E '^(PEBBLE_|TLS_BENCH_)' || true); do unset "$v"; done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sitehost-tls-bench.XXXXXX")"
# shellcheck source=bench/lib.sh
. bench/lib.sh # we are at the repository root (cd above)

# find_bin NAME DIR_OVERRIDE: DIR_OVERRIDE/NAME if the override is set,
# else NAME on PATH, else $GOPATH/bin/NAME; "" when missing.
find_bin() {
  local name=$1 dir=$2 p
  if [ -n "$dir" ]; then
    [ -x "$dir/$name" ] && echo "$dir/$name"
    return 0
  fi
  if p="$(command -v "$name")"; then echo "$p"; return 0; fi
  p="$(go env GOPATH | cut -d: -f1)/bin/$name"
  [ -x "$p" ] && echo "$p"
  return 0
}

# --- tools ---------------------------------------------------------------

need_wrk
for t in go git curl openssl; do command -v "$t" >/dev/null || die "$t is needed"; done
caddy="${SITEHOST_CADDY:-$(find_bin caddy "")}"
[ -n "$caddy" ] && [ -x "$caddy" ] || die "no caddy binary: go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9, or set SITEHOST_CADDY"
pebble="$(find_bin pebble "${SITEHOST_PEBBLE_DIR:-}")"
challtestsrv="$(find_bin pebble-challtestsrv "${SITEHOST_PEBBLE_DIR:-}")"
[ -n "$pebble" ] && [ -n "$challtestsrv" ] ||
  die "no pebble / pebble-challtestsrv: go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1 github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1, or set SITEHOST_PEBBLE_DIR"

# `caddy version` says "unknown" for a `go install`ed build; the module
# version is in the binary's build info.
caddy_version="$("$caddy" version 2>/dev/null | head -n 1 | cut -d' ' -f1)"
if [ -z "$caddy_version" ] || [ "$caddy_version" = unknown ]; then
  caddy_version="$(go version -m "$caddy" | awk '$1 == "mod" && $2 == "github.com/caddyserver/caddy/v2" { print $3 }') (from go version -m; caddy version: ${caddy_version:-?})"
fi

# The handshake counter / full-handshake shim for wrk.
shim=""
if command -v cc >/dev/null && cc -shared -fPIC -O2 -o "$TMP/handshakes.so" "$SHIM_SRC" -ldl 2>"$TMP/cc.log"; then
  shim="$TMP/handshakes.so"
else
  echo "warning: cannot build $SHIM_SRC (no cc?): handshake-full is skipped and handshakes are not counted" >&2
fi

# nginx: the one installed, else Debian's package unpacked into $TMP.
nginx=""
if [ "$NGINX" = 1 ]; then
  nginx="$(command -v nginx || true)"
  [ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
  if [ -z "$nginx" ] && command -v apt-get >/dev/null; then
    echo "fetching Debian's nginx package (apt-get download, unpacked into $TMP)…" >&2
    mkdir -p "$TMP/nginx-pkg"
    if (cd "$TMP/nginx-pkg" && apt-get download nginx >/dev/null 2>&1 && dpkg -x nginx_*.deb root) &&
      "$TMP/nginx-pkg/root/usr/sbin/nginx" -v >/dev/null 2>&1; then
      nginx="$TMP/nginx-pkg/root/usr/sbin/nginx"
    fi
  fi
  [ -n "$nginx" ] || echo "warning: no nginx (not installed, and apt-get download failed): its column is skipped" >&2
fi
servers=(sitehost caddy)
[ -n "$nginx" ] && servers+=(nginx)

echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:    $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "mem:    $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "kernel: $(uname -r)"
echo "go:     $(go version)"
echo "caddy:  $caddy $caddy_version"
[ -n "$nginx" ] && echo "nginx:  $nginx $("$nginx" -v 2>&1 | sed 's/^nginx version: //') ($("$nginx" -V 2>&1 | sed -n 's/^built with //p'))"
echo "pebble: $pebble $(go version -m "$pebble" 2>/dev/null | awk '$1 == "mod" { print $3 }')"
echo "wrk:    $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $(openssl version)"
echo "tmp:    $TMP"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk:    -t$THREADS -c$CONNS -d$DURATION (warm-up $WARMUP), SNI and Host: $HOST, connecting to 127.0.0.1"
echo

go build -tags extended -o "$TMP/sitehost" ./cmd/sitehost

# --- the site ----------------------------------------------------------------
# A home page of ~5 KiB linking a ~30 KiB stylesheet, a few pages and a
# 404 page. $TMP/www is what Caddy and nginx serve; the same files are
# committed to the git repository sitehost publishes from.

www="$TMP/www"
mkdir -p "$www/about" "$www/posts/hello" "$www/posts/world"
awk -v dir="$www" '
  function para(n,   p, k) {
    p = "<p>"
    for (k = 0; k < n; k++) p = p w[int(rand() * nw) + 1] " "
    return p "</p>\n"
  }
  function page(f, title, size,   s) {
    s = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" title "</title>\n<link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><nav><a href=\"/\">home</a> <a href=\"/about/\">about</a> <a href=\"/posts/hello/\">hello</a> <a href=\"/posts/world/\">world</a></nav>\n<main><h1>" title "</h1>\n"
    while (length(s) < size) s = s para(40)
    printf "%s</main></body></html>\n", s > f
    close(f)
  }
  BEGIN {
    srand(1)
    nw = split("the a of static site is built from git and served over tls with a certificate from an acme ca every deploy immutable pointer manifest blob content hash request answer page post reader writer morning evening river mountain window garden", w, " ")
    page(dir "/index.html", "bench", 5050)
    page(dir "/about/index.html", "About", 3000)
    page(dir "/posts/hello/index.html", "Hello", 4000)
    page(dir "/posts/world/index.html", "World", 4000)
    page(dir "/404.html", "Not found", 500)
    f = dir "/style.css"; s = ""
    for (k = 0; length(s) < 30600; k++) s = s sprintf(".c%d { margin: %dpx %dpx; color: #%06x; font: %dpx/1.5 system-ui, sans-serif; }\n", k, k % 17, k % 23, int(rand() * 16777215), 12 + k % 9)
    printf "%s", s > f
    close(f)
  }'
repo="$TMP/repo"
mkdir -p "$repo"
cp -R "$www/." "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "bench site"
paths=(/ /style.css /about/ /posts/hello/ /posts/world/)
file_of() { case "$1" in */) echo "$www$1index.html" ;; *) echo "$www$1" ;; esac; }
echo "site:   $(find "$www" -type f | wc -l) files: index.html $(wc -c <"$www/index.html") B, style.css $(wc -c <"$www/style.css") B"

# --- Pebble ---------------------------------------------------------------------
# As internal/pebbletest runs it: challtestsrv answers 127.0.0.1 to every A
# query and runs no challenge servers of its own; Pebble validates for real
# on httpPort/tlsPort of 127.0.0.1, which are sitehost's listeners. Its API
# certificate is a throwaway CA + leaf for 127.0.0.1 made with openssl.

pb="$TMP/pebble"
mkdir -p "$pb"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
  -subj "/CN=bench pebble API CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$pb/api-ca.key" -out "$pb/api-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench pebble API" \
  -keyout "$pb/api-key.pem" -out "$pb/api.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$pb/api.ext"
openssl x509 -req -in "$pb/api.csr" -CA "$pb/api-ca.pem" -CAkey "$pb/api-ca.key" -set_serial "0x$(openssl rand -hex 8)" \
  -days 7 -extfile "$pb/api.ext" -out "$pb/api-cert.pem" 2>/dev/null

dns_port="$(free_port)"
chall_mgmt="$(free_port)"
api_port="$(free_port)"
pb_mgmt="$(free_port)"
http_port="$(free_port)" # Pebble validates HTTP-01 here: sitehost's http listener
tls_port="$(free_port)"  # and TLS-ALPN-01 here: sitehost's https listener
"$challtestsrv" -dnsserver "127.0.0.1:$dns_port" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
  -http01 "" -https01 "" -tlsalpn01 "" -doh "" -management "127.0.0.1:$chall_mgmt" \
  >"$TMP/challtestsrv.log" 2>&1 &
pids+=($!)
chall_pid=$!
# Its management API answers 404 on /; any answer means it is up.
for i in $(seq 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$chall_mgmt/" || true)" != 000 ] && break
  kill -0 "$chall_pid" 2>/dev/null || { tail -n 20 "$TMP/challtestsrv.log" >&2; die "pebble-challtestsrv exited"; }
  [ "$i" -lt 200 ] || die "pebble-challtestsrv did not start"
  sleep 0.1
done
cat >"$pb/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$api_port",
    "managementListenAddress": "127.0.0.1:$pb_mgmt",
    "certificate": "$pb/api-cert.pem",
    "privateKey": "$pb/api-key.pem",
    "httpPort": $http_port,
    "tlsPort": $tls_port,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "retryAfter": {"authz": 1, "order": 1},
    "keyAlgorithm": "ecdsa"
  }
}
EOF
(cd "$pb" && PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 exec "$pebble" -config "$pb/config.json" \
  -dnsserver "127.0.0.1:$dns_port" -strict=false) >"$TMP/pebble.log" 2>&1 &
pids+=($!)
directory="https://127.0.0.1:$api_port/dir"
wait_ok pebble "$!" "$TMP/pebble.log" "$directory" --cacert "$pb/api-ca.pem"
wait_ok pebble "$!" "$TMP/pebble.log" "https://127.0.0.1:$pb_mgmt/roots/0" --cacert "$pb/api-ca.pem"
# The root that signs what Pebble issues (new on every start); the
# intermediate comes in each server's chain.
curl -sf --cacert "$pb/api-ca.pem" -o "$TMP/issuing-root.pem" "https://127.0.0.1:$pb_mgmt/roots/0"
ROOT="$TMP/issuing-root.pem"

# --- sitehost ----------------------------------------------------------------------

declare -A port_of log_of pid_of
export SITEHOST_API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")"  # 32+ characters, as serve requires
cat >"$TMP/sitehost.yaml" <<EOF
server:
  data_dir: "$TMP/data"
  http: "127.0.0.1:$http_port"
  https: "127.0.0.1:$tls_port"
  admin: "127.0.0.1:$(free_port)"
  preview_domain: preview.test
  poll_interval: 0s
  api_token_env: SITEHOST_API_TOKEN
  storage: {kind: fs}
  acme: {email: bench@example.org, ca: "$directory", ca_root: "$pb/api-ca.pem"}
sites:
  - name: bench
    repo: "$repo"
    domains: [$HOST]
    build: {tool: none}
    previews: {enabled: false}
EOF
"$TMP/sitehost" validate -c "$TMP/sitehost.yaml" >/dev/null
log_of[sitehost]="$TMP/sitehost.log"
"$TMP/sitehost" serve -c "$TMP/sitehost.yaml" >"${log_of[sitehost]}" 2>&1 &
pid_of[sitehost]=$!
pids+=($!)
port_of[sitehost]=$tls_port
# Served with a certificate Pebble's root verifies, and the deploy is live.
t0=$(date +%s.%N)
wait_ok sitehost "${pid_of[sitehost]}" "${log_of[sitehost]}" "https://$HOST:$tls_port/" \
  --cacert "$ROOT" --resolve "$HOST:$tls_port:127.0.0.1"
echo "cert:   sitehost serves https://$HOST:$tls_port/ with Pebble's certificate after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# The chain (leaf + intermediate) and key certmagic stored, for the others.
crt="$(find "$TMP/data/certs/certificates" -type f -path "*/$HOST/$HOST.crt" | head -n 1)"
[ -n "$crt" ] || die "no $HOST.crt under $TMP/data/certs/certificates"
cp "$crt" "$TMP/cert.pem"
cp "${crt%.crt}.key" "$TMP/key.pem"
echo "        ${crt#"$TMP/"}: $(openssl x509 -in "$TMP/cert.pem" -noout -text | grep -E -m2 'Public-Key|ASN1 OID' | sed 's/^ *//' | paste -sd' ' -), $(grep -c 'BEGIN CERTIFICATE' "$TMP/cert.pem") certificates in the chain"

# --- Caddy ---------------------------------------------------------------------------
# One HTTPS site with the copied certificate; no admin endpoint, no
# HTTP→HTTPS redirect listener, no HTTP/3 (so no Alt-Svc header), no access
# log; state in $TMP, not ~/.local/share/caddy.

port_of[caddy]="$(free_port)"
mkdir -p "$TMP/caddy-home"
cat >"$TMP/Caddyfile" <<EOF
{
	admin off
	persist_config off
	auto_https disable_redirects
	skip_install_trust
	storage file_system $TMP/caddy-home/data
	servers {
		protocols h1 h2
	}
}

https://$HOST:${port_of[caddy]} {
	bind 127.0.0.1
	tls $TMP/cert.pem $TMP/key.pem
	root * $www
	file_server
}
EOF
log_of[caddy]="$TMP/caddy.log"
HOME="$TMP/caddy-home" XDG_DATA_HOME="$TMP/caddy-home" XDG_CONFIG_HOME="$TMP/caddy-home" \
  "$caddy" run --config "$TMP/Caddyfile" --adapter caddyfile >"${log_of[caddy]}" 2>&1 &
pid_of[caddy]=$!
pids+=($!)
wait_ok caddy "${pid_of[caddy]}" "${log_of[caddy]}" "https://$HOST:${port_of[caddy]}/" \
  --cacert "$ROOT" --resolve "$HOST:${port_of[caddy]}:127.0.0.1"

# --- nginx -----------------------------------------------------------------------------
# Two workers, TLS 1.3 and 1.2, HTTP/2 on the listener. nginx closes a
# keep-alive connection after keepalive_requests (1000 by default); Go's
# server (sitehost, Caddy) has no such limit, so it is raised here, or the
# keep-alive runs would include a handshake every 1000 requests. OpenSSL
# picks the TLS 1.3 cipher by the client's order (AES-256-GCM first for
# wrk), Go by its own (AES-128-GCM first with AES-NI); nginx is told to
# prefer AES-128-GCM too, so all three negotiate the same suite.

if [ -n "$nginx" ]; then
  port_of[nginx]="$(free_port)"
  ng="$TMP/nginx"
  mkdir -p "$ng"
  # Workers run as nobody: let them through the scratch folder to the files.
  chmod 755 "$TMP"
  cat >"$ng/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; text/css css; }
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:${port_of[nginx]} ssl http2;
        server_name $HOST;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3 TLSv1.2;
        ssl_prefer_server_ciphers on;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        root $www;
        index index.html;
        error_page 404 /404.html;
    }
}
EOF
  log_of[nginx]="$ng/error.log"
  if "$nginx" -t -p "$ng" -c "$ng/nginx.conf" -e "$ng/error.log" >"$ng/test.log" 2>&1; then
    "$nginx" -p "$ng" -c "$ng/nginx.conf" -e "$ng/error.log" >"$ng/stdout.log" 2>&1 &
    pid_of[nginx]=$!
    pids+=($!)
    wait_ok nginx "${pid_of[nginx]}" "${log_of[nginx]}" "https://$HOST:${port_of[nginx]}/" \
      --cacert "$ROOT" --resolve "$HOST:${port_of[nginx]}:127.0.0.1"
  else
    cat "$ng/test.log" >&2
    echo "warning: nginx rejects its configuration: its column is skipped" >&2
    servers=(sitehost caddy)
  fi
fi

# --- same bytes, same certificate, same TLS ---------------------------------------------
# Every path from every server: 200 and exactly the file's bytes.

for s in "${servers[@]}"; do
  p=${port_of[$s]}
  for path in "${paths[@]}"; do
    got="$(curl -sf --http1.1 --cacert "$ROOT" --resolve "$HOST:$p:127.0.0.1" "https://$HOST:$p$path" | sha256sum | cut -d' ' -f1)" ||
      die "$s: GET $path failed"
    [ "$got" = "$(sha256sum <"$(file_of "$path")" | cut -d' ' -f1)" ] || die "$s: $path is not the file's bytes"
  done
done
echo "bytes:  every path (${paths[*]}) is 200 with the same bytes from ${servers[*]}"
echo

# tls_field OUTPUT KEY: the value after "KEY: " in openssl s_client output.
tls_field() { sed -n "s/^$2: //p" <<<"$1" | head -n 1; }

echo "TLS as wrk sees it (openssl s_client, no ALPN, SNI $HOST, $(openssl version | cut -d' ' -f1-2) like wrk):"
echo
echo "| server | protocol | cipher suite | key exchange | signature | leaf SHA-256 (first 16) | chain | verify | resumes | ALPN h2,http/1.1 | response header bytes (/ and /style.css) |"
echo "|---|---|---|---|---|---|---:|---|---|---|---|"
req="GET / HTTP/1.1\r\nHost: $HOST\r\nConnection: close\r\n\r\n"
first_fp="" first_params="" tls_differs=""
for s in "${servers[@]}"; do
  p=${port_of[$s]}
  conn=(-connect "127.0.0.1:$p" -servername "$HOST" -CAfile "$ROOT")
  brief="$(openssl s_client "${conn[@]}" -brief </dev/null 2>&1 || true)"
  chain="$(openssl s_client "${conn[@]}" -showcerts </dev/null 2>/dev/null || true)"
  fp="$(openssl x509 -noout -fingerprint -sha256 <<<"$chain" | cut -d= -f2 | tr -d : | cut -c1-16)"
  ncert="$(grep -c 'BEGIN CERTIFICATE' <<<"$chain" || true)"
  alpn="$(openssl s_client "${conn[@]}" -alpn h2,http/1.1 </dev/null 2>/dev/null | sed -n 's/^ALPN protocol: //p' | head -n 1)"
  # Resumption: a session saved from one request (the TLS 1.3 ticket comes
  # after the handshake, so read the whole response), offered on a second
  # connection.
  printf %b "$req" | openssl s_client "${conn[@]}" -sess_out "$TMP/sess-$s.pem" -ign_eof >/dev/null 2>&1 || true
  resumed="$(openssl s_client "${conn[@]}" -sess_in "$TMP/sess-$s.pem" </dev/null 2>/dev/null | grep -E -m1 '^(New|Reused), ' | cut -d, -f1 || true)"
  [ "$resumed" = Reused ] && resumed=yes || resumed="no (${resumed:-?})"
  hdr="$(for path in / /style.css; do
    curl -s --http1.1 -o /dev/null -w '%{size_header}\n' --cacert "$ROOT" --resolve "$HOST:$p:127.0.0.1" "https://$HOST:$p$path"
  done | paste -sd/ -)"
  [ -n "$fp" ] || die "$s: no certificate from openssl s_client"
  [ -n "$first_fp" ] || first_fp=$fp
  [ "$fp" = "$first_fp" ] || die "$s serves a different certificate ($fp) from ${servers[0]} ($first_fp)"
  params="$(tls_field "$brief" 'Protocol version') | $(tls_field "$brief" Ciphersuite) | $(tls_field "$brief" 'Server Temp Key') | $(tls_field "$brief" 'Signature type') $(tls_field "$brief" 'Hash used')"
  [ -n "$first_params" ] || first_params=$params
  [ "$params" = "$first_params" ] || tls_differs+=" $s"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" "$params" \
    "$fp" "$ncert" "$(tls_field "$brief" Verification)" "$resumed" "${alpn:-none}" "$hdr"
done
echo
if [ -n "$tls_differs" ]; then
  echo "NOTE: the TLS parameters of$tls_differs differ from ${servers[0]}'s: the comparison is not like for like."
else
  echo "Same certificate, protocol, cipher suite, key exchange and signature on every server."
fi
echo
for s in "${servers[@]}"; do
  echo "$s response headers for /:"
  curl -s --http1.1 -o /dev/null -D - --cacert "$ROOT" --resolve "$HOST:${port_of[$s]}:127.0.0.1" \
    "https://$HOST:${port_of[$s]}/" | tr -d '\r' | sed '/^$/d; s/^/    /'
done
echo

# --- the runs ----------------------------------------------------------------------------

tests=()
[ -n "$shim" ] && tests+=(handshake-full)
tests+=(handshake-resumed keepalive-html keepalive-css)

# CPU time (clock ticks, user + system) of a server: the process and its
# children (nginx's workers).
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() {
  local pid t=0 kids
  kids="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
  for pid in "$1" $kids; do
    [ -r "/proc/$pid/stat" ] || continue
    t=$((t + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}

# Busy and total clock ticks of the whole machine (all CPUs; busy is all
# but idle and iowait).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# wrk_once SERVER TEST DURATION OUT: one wrk run, output (and the shim's
# HANDSHAKES line) in OUT.
wrk_once() {
  local s=$1 test=$2 d=$3 out=$4 path=/ hdr=() env=()
  case "$test" in
    handshake-*) hdr=(-H "Connection: close") ;;
    keepalive-css) path=/style.css ;;
  esac
  [ -n "$shim" ] && env+=("LD_PRELOAD=$shim")
  [ "$test" = handshake-full ] && env+=(TLS_BENCH_FULL=1)
  env "${env[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$d" --timeout 5s "${hdr[@]}" -s "$LUA" \
    "https://$HOST:${port_of[$s]}$path" >"$out" 2>&1
}

# run_wrk N SERVER TEST: one timed run; appends a line to results.tsv.
run_wrk() {
  local n=$1 s=$2 test=$3 out="$TMP/wrk-$1-$2-$3.txt" c0 c1 m0 m1
  c0="$(cpu_ticks "${pid_of[$s]}")"
  m0="$(machine_ticks)"
  wrk_once "$s" "$test" "$DURATION" "$out"
  c1="$(cpu_ticks "${pid_of[$s]}")"
  m1="$(machine_ticks)"
  grep -q '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT"; }
  # → run server test rps B/s p50 p99 errors server-cpu-s handshakes-full
  #   handshakes-resumed requests seconds machine-cores wrk-cpu-s
  awk -v n="$n" -v s="$s" -v test="$test" -v cpu="$((c1 - c0))" -v hz="$clk_tck" \
    -v m0="$m0" -v m1="$m1" -v ncpu="$(nproc)" '
    /^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
    /^HANDSHAKES / { for (i = 2; i <= NF; i++) { split($i, kv, "="); h[kv[1]] = kv[2] } }
    END {
      sec = r["duration_us"] / 1e6
      split(m0, a, " "); split(m1, b, " ")
      printf "%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%.3f\t%.2f\t%s\n", n, s, test,
        r["requests"] / sec, r["bytes"] / sec, r["p50_us"], r["p99_us"], r["errors"], cpu / hz,
        ("full" in h ? h["full"] : "-"), ("resumed" in h ? h["resumed"] : "-"), r["requests"], sec,
        (b[2] > a[2] ? ncpu * (b[1] - a[1]) / (b[2] - a[2]) : 0),
        ("cpu_us" in h && h["cpu_us"] >= 0 ? sprintf("%.2f", h["cpu_us"] / 1e6) : "-")
    }' "$out" >>"$TMP/results.tsv"
  tail -n 1 "$TMP/results.tsv" | awk -F'\t' '{ printf "  run %s %-8s %-17s %8.0f req/s\n", $1, $2, $3, $4 }' >&2
}

# Warm-up: each server, each test, once, untimed.
for test in "${tests[@]}"; do
  for s in "${servers[@]}"; do wrk_once "$s" "$test" "$WARMUP" "$TMP/warm-$s-$test.txt"; done
done

: >"$TMP/results.tsv"
n=0
for _ in $(seq "$ROUNDS"); do
  for test in "${tests[@]}"; do
    for s in "${servers[@]}"; do n=$((n + 1)); run_wrk "$n" "$s" "$test"; done
  done
done
echo >&2

# --- summary -------------------------------------------------------------------------------

echo "Summary (HTTP/1.1 over TLS 1.3; handshake-* = one request per connection, GET / of $(wc -c <"$www/index.html") B;"
echo "keepalive-html = GET / on $CONNS kept connections; keepalive-css = GET /style.css, $(wc -c <"$www/style.css") B):"
echo
awk -F'\t' -v order="${servers[*]}" -v tests="${tests[*]}" '
  BEGIN {
    printf "| run | server | test | req/s | transfer/s | p50 | p99 | errors | server CPU | CPU µs/req | wrk CPU | machine CPU | handshakes full / resumed |\n"
    printf "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
  }
  {
    us = ($12 > 0 ? $9 * 1e6 / $12 : 0)
    printf "| %s | %s | %s | %.0f | %.1f MiB/s | %.2f ms | %.2f ms | %s | %.2f cores | %.0f | %s | %.2f cores | %s / %s |\n",
      $1, $2, $3, $4, $5 / 1048576, $6 / 1000, $7 / 1000, $8, $9 / $13, us,
      ($15 == "-" ? "-" : sprintf("%.2f cores", $15 / $13)), $14, $10, $11
    k = $3 SUBSEP $2; cnt[k]++; rps[k] += $4; p99[k] += $7; cpu[k] += us
    if (!(k in lo) || $4 < lo[k]) lo[k] = $4
    if (!(k in hi) || $4 > hi[k]) hi[k] = $4
  }
  END {
    ns = split(order, sv, " "); nt = split(tests, tv, " ")
    printf "\n| test |"
    for (i = 1; i <= ns; i++) printf " %s req/s (mean, range) | %s p99 | %s CPU µs/req |", sv[i], sv[i], sv[i]
    for (i = 2; i <= ns; i++) printf " %s / %s |", sv[i], sv[1]
    printf "\n|---|"
    for (i = 1; i <= ns; i++) printf "---:|---:|---:|"
    for (i = 2; i <= ns; i++) printf "---:|"
    printf "\n"
    for (t = 1; t <= nt; t++) {
      printf "| %s |", tv[t]
      for (i = 1; i <= ns; i++) {
        k = tv[t] SUBSEP sv[i]
        if (!cnt[k]) { printf " – | – | – |"; continue }
        printf " %.0f (%.0f–%.0f) | %.2f ms | %.0f |", rps[k] / cnt[k], lo[k], hi[k], p99[k] / cnt[k] / 1000, cpu[k] / cnt[k]
      }
      b = tv[t] SUBSEP sv[1]
      for (i = 2; i <= ns; i++) {
        k = tv[t] SUBSEP sv[i]
        if (cnt[k] && cnt[b]) printf " %.1f%% |", 100 * (rps[k] / cnt[k]) / (rps[b] / cnt[b]); else printf " – |"
      }
      printf "\n"
    }
  }' "$TMP/results.tsv"
echo
echo "p50/p99: wrk's latency, from writing the request to reading the whole response; it"
echo "does not include connecting or the TLS handshake, even in the handshake-* tests."
echo "server CPU: user + system time of the server process (and nginx's workers) over the run,"
echo "in cores; CPU µs/req is that time per request. wrk CPU: wrk's own (all threads). machine"
echo "CPU: all $(nproc) CPUs busy over the run, in cores: the server, wrk and anything else running."
echo "handshakes: TLS handshakes wrk completed, counted by bench/tls-vs-caddy-handshakes.c."
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
