#!/usr/bin/env bash
# A local 3-node JetStream cluster "mts-local" (deploy/cluster/n1.conf … n3.conf):
#   clients  nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243
#   routes   127.0.0.1:6241-6243     monitoring  http://127.0.0.1:8241-8243
#   store, log and pid file under ./var/cluster/nX (repository root).
#
#   bash deploy/cluster/start.sh          start the nodes not yet running; wait until the cluster
#                                          has a JetStream meta leader and every node is healthy
#   bash deploy/cluster/start.sh stop     SIGTERM each node (SIGKILL after 10 s)
#   bash deploy/cluster/start.sh status   which nodes run, and their /healthz
#
# Then run the engine against all three with streams replicated 3 times:
#   NATS_URL=nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243 RISK_NATS__REPLICAS=3 npm start
set -euo pipefail
cd "$(dirname "$0")/../.."

NODES=(n1 n2 n3)
READY_TIMEOUT_S=${READY_TIMEOUT_S:-30}
STOP_TIMEOUT_S=10

idx() { echo "${1#n}"; }
client_port() { echo "424$(idx "$1")"; }
http_port() { echo "824$(idx "$1")"; }
dir_of() { echo "var/cluster/$1"; }
pid_file() { echo "$(dir_of "$1")/nats-server.pid"; }
log_file() { echo "$(dir_of "$1")/nats-server.log"; }

find_bin() {
  if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "$NATS_SERVER_BIN" ]; then echo "$NATS_SERVER_BIN"; return; fi
  if command -v nats-server >/dev/null 2>&1; then command -v nats-server; return; fi
  for d in /usr/sbin /usr/local/bin; do
    if [ -x "$d/nats-server" ]; then echo "$d/nats-server"; return; fi
  done
  cat >&2 <<'EOF'
no nats-server binary found (NATS_SERVER_BIN, PATH, /usr/sbin, /usr/local/bin).
Install nats-server (2.9 or later):
  Debian/Ubuntu: sudo apt-get install nats-server   (installs /usr/sbin/nats-server)
  macOS:         brew install nats-server
  other:         download a release from https://github.com/nats-io/nats-server/releases
then put it on PATH or set NATS_SERVER_BIN=/path/to/nats-server.
EOF
  exit 1
}

# The pid of node $1 if it is running (a nats-server started with its config), else nothing.
running_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "deploy/cluster/$1.conf"; then
    echo "$pid"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# /healthz answers 200 once the node's JetStream is up and it knows the meta leader.
healthy() {
  local url="http://127.0.0.1:$(http_port "$1")/healthz"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 2 "$url" >/dev/null 2>&1
  else
    wget -q -T 2 -O /dev/null "$url" >/dev/null 2>&1
  fi
}

stop_nodes() {
  local n pid waited
  for n in "$@"; do
    pid=$(running_pid "$n")
    if [ -z "$pid" ]; then
      echo "$n: not running"
      rm -f "$(pid_file "$n")"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT_S * 10)) ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$n: still running after ${STOP_TIMEOUT_S}s, SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$n")"
    echo "$n: stopped (pid $pid)"
  done
}

start() {
  local bin n pid started=() deadline
  bin=$(find_bin)
  for n in "${NODES[@]}"; do
    pid=$(running_pid "$n")
    if [ -n "$pid" ]; then
      echo "$n: already running (pid $pid)"
      continue
    fi
    if port_busy "$(client_port "$n")"; then
      echo "$n: port $(client_port "$n") on 127.0.0.1 is taken by another process" >&2
      [ "${#started[@]}" -gt 0 ] && stop_nodes "${started[@]}"
      exit 1
    fi
    mkdir -p "$(dir_of "$n")"
    nohup "$bin" -c "deploy/cluster/$n.conf" >>"$(log_file "$n")" 2>&1 </dev/null &
    echo $! >"$(pid_file "$n")"
    started+=("$n")
  done

  deadline=$((SECONDS + READY_TIMEOUT_S))
  for n in "${NODES[@]}"; do
    until healthy "$n"; do
      if [ -z "$(running_pid "$n")" ] || [ "$SECONDS" -ge "$deadline" ]; then
        echo "$n: not healthy (exited, or not within ${READY_TIMEOUT_S}s); last log lines:" >&2
        tail -n 20 "$(log_file "$n")" >&2 || true
        [ "${#started[@]}" -gt 0 ] && stop_nodes "${started[@]}"
        exit 1
      fi
      sleep 0.2
    done
  done
  for n in "${NODES[@]}"; do
    echo "$n: nats://127.0.0.1:$(client_port "$n") pid $(running_pid "$n") log $(log_file "$n")"
  done
  echo "cluster mts-local ready:"
  echo "  NATS_URL=nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243 RISK_NATS__REPLICAS=3"
}

status() {
  local n pid
  for n in "${NODES[@]}"; do
    pid=$(running_pid "$n")
    if [ -z "$pid" ]; then
      echo "$n: not running"
    elif healthy "$n"; then
      echo "$n: running (pid $pid), healthy"
    else
      echo "$n: running (pid $pid), not healthy"
    fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop_nodes "${NODES[@]}" ;;
  status) status ;;
  *)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
