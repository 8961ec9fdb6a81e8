#!/usr/bin/env bash
# Three engines (one service) on the local 3-node cluster (deploy/cluster/start.sh), from this
# checkout: every engine started the same way (`mts-risk serve`, default configuration), each with
# its own state directory and HTTP port, its log and pid file under ./var/engines/eN.
#
#   bash deploy/engines/engines.sh start            start the engines not yet running; wait until each
#                                                    is ready and the partitions are shared out
#   bash deploy/engines/engines.sh stop             SIGTERM each (planned handover), SIGKILL after 30 s
#   bash deploy/engines/engines.sh status           `mts-risk status --all`: each engine, what it owns
#   bash deploy/engines/engines.sh rolling-restart  one engine at a time: SIGTERM (it hands its funds
#                                                    over, then exits), start it again from the current
#                                                    build, wait until it is ready and owns its share,
#                                                    then the next. Fails no check under load.
#
# Rolling upgrade: `git pull && npm ci && npm run build`, then `rolling-restart`. The running
# engines keep the code they started with; each restarted one runs the new build.
#
# Environment (defaults in brackets):
#   NATS_URL             [nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243]
#   RISK_NATS__REPLICAS  [3]  stream and ownership-bucket replicas
#   ENGINES              [3]  how many engines
#   HTTP_PORTS           ["9465 9466 9467"]  one /metrics, /readyz and dashboard port per engine
#   VAR_DIR              [./var/engines]
#   PARTITIONS           [64] ownership.partitions (the engines' default)
#   READY_TIMEOUT_S      [60]
set -euo pipefail
cd "$(dirname "$0")/../.."

export NATS_URL=${NATS_URL:-nats://127.0.0.1:4241,nats://127.0.0.1:4242,nats://127.0.0.1:4243}
export RISK_NATS__REPLICAS=${RISK_NATS__REPLICAS:-3}
ENGINES=${ENGINES:-3}
read -r -a HTTP <<<"${HTTP_PORTS:-9465 9466 9467}"
VAR_DIR=${VAR_DIR:-var/engines}
PARTITIONS=${PARTITIONS:-64}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-60}
STOP_TIMEOUT_S=30
BIN=(node bin/mts-risk.js)

[ -f dist/cli/main.js ] || {
  echo "no build: run npm ci && npm run build first" >&2
  exit 1
}
[ "${#HTTP[@]}" -ge "$ENGINES" ] || {
  echo "HTTP_PORTS names ${#HTTP[@]} ports for $ENGINES engines" >&2
  exit 2
}

names() { for i in $(seq 1 "$ENGINES"); do echo "e$i"; done; }
dir_of() { echo "$VAR_DIR/$1"; }
pid_file() { echo "$(dir_of "$1")/engine.pid"; }
log_file() { echo "$(dir_of "$1")/engine.log"; }
port_of() { echo "${HTTP[$((${1#e} - 1))]}"; }

running_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "mts-risk.js serve"; then
    echo "$pid"
  fi
}

# Every engine's status as one JSON document (exit 0 also when none answers: prints {"engines":[]}).
status_json() { "${BIN[@]}" status --all 2>/dev/null || echo '{"engines":[]}'; }

# True once the engine with this pid is ready, owns some partitions, and every partition has an
# owner (the others have handed back its share), as `status --all` reports it.
settled() {
  status_json | node -e '
    const [pid, parts] = [process.argv[1], Number(process.argv[2])];
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const es = JSON.parse(s).engines ?? [];
      const me = es.find((e) => String(e.instance).endsWith("-" + pid));
      const owned = es.reduce((n, e) => n + (Number(e.owned) || 0), 0);
      process.exit(me && me.ready && me.owned > 0 && owned === parts ? 0 : 1);
    });' "$1" "$PARTITIONS"
}

start_one() {
  local n=$1 pid
  pid=$(running_pid "$n")
  if [ -n "$pid" ]; then
    echo "$n: already running (pid $pid)"
    return 0
  fi
  mkdir -p "$(dir_of "$n")/state"
  RISK_STATE_DIR="$(dir_of "$n")/state" RISK_HTTP__PORT=$(port_of "$n") RISK_HTTP__REQUIRED=true \
    nohup "${BIN[@]}" serve >>"$(log_file "$n")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$n")"
}

wait_settled() {
  local n=$1 pid deadline
  pid=$(running_pid "$n")
  deadline=$((SECONDS + READY_TIMEOUT_S))
  until [ -n "$pid" ] && settled "$pid"; do
    if [ -z "$(running_pid "$n")" ] || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$n: not ready and owning its share (exited, or not within ${READY_TIMEOUT_S}s); last log lines:" >&2
      tail -n 20 "$(log_file "$n")" >&2 || true
      return 1
    fi
    sleep 1 # each poll makes every engine compute its state digest: not too often
    pid=$(running_pid "$n")
  done
  echo "$n: ready (pid $pid, http 127.0.0.1:$(port_of "$n"))"
}

stop_one() {
  local n=$1 pid waited=0
  pid=$(running_pid "$n")
  if [ -z "$pid" ]; then
    echo "$n: not running"
    rm -f "$(pid_file "$n")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT_S * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$n: still running after ${STOP_TIMEOUT_S}s, SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$n")"
  echo "$n: stopped (pid $pid)"
}

case "${1:-start}" in
  start)
    for n in $(names); do start_one "$n"; done
    for n in $(names); do wait_settled "$n"; done
    ;;
  stop)
    for n in $(names); do stop_one "$n"; done
    ;;
  status)
    status_json
    ;;
  rolling-restart)
    for n in $(names); do
      stop_one "$n"
      start_one "$n"
      wait_settled "$n"
    done
    ;;
  *)
    echo "usage: $0 [start|stop|status|rolling-restart]" >&2
    exit 2
    ;;
esac
