# Shared by the bench scripts: process cleanup, free ports, readiness.
# Source it after setting TMP (the scratch folder); processes appended to
# pids are stopped on exit.
# shellcheck shell=bash

pids=()

# Stop only what this script started, by pid: TERM, then KILL after 10 s.
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -eq 0 ] && [ -z "${KEEP:-}" ]; then
    rm -rf "$TMP"
  else
    echo "scratch and logs kept in $TMP" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "error: $*" >&2; exit 1; }

# A free loopback port: the kernel's pick when python3 is there, else a
# random one nothing answers on. Never the same one twice in a run.
used_ports=" "
free_port() {
  local p
  while :; do
    if command -v python3 >/dev/null; then
      p="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    else
      p=$((20000 + RANDOM % 40000))
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    fi
    case "$used_ports" in *" $p "*) continue ;; esac
    used_ports+="$p "
    echo "$p"
    return
  done
}

# wait_ok NAME PID LOG URL [curl args...]: until URL answers 2xx, or fail
# with the tail of the process's log when it dies or takes over 2 minutes.
wait_ok() {
  local name=$1 pid=$2 log=$3 url=$4
  shift 4
  for _ in $(seq 1200); do
    curl -sf -o /dev/null "$@" "$url" && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 40 "$log" >&2; die "$name exited"; }
    sleep 0.1
  done
  tail -n 40 "$log" >&2
  die "$name did not answer $url within 2 minutes"
}

# need_wrk installs wrk with apt-get when it is missing.
need_wrk() {
  command -v wrk >/dev/null && return 0
  echo "installing wrk…" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
}

# machine_info prints what a figure depends on: date, CPU, memory, Go.
machine_info() {
  echo "date:  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu:   $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem:   $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "go:    $(go version)"
}
