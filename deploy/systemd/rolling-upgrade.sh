#!/usr/bin/env bash
# Rolling upgrade of the three engines (mts-risk.service on hosts n1, n2, n3) to a release, one host
# at a time, under load, failing no check:
#
#   deploy/systemd/rolling-upgrade.sh <git-rev> [host ...]      (hosts default: n1 n2 n3)
#
# On each host, over ssh: install the release into /opt/mts-risk/releases/<rev> (git archive of the
# revision, npm ci, which also builds), point /opt/mts-risk/current at it, `systemctl restart
# mts-risk` (SIGTERM: the engine hands its funds to the other two, then exits; the new one catches
# up and takes its share back). Before the next host, wait until `mts-risk status --all` shows the
# restarted engine ready, owning partitions, and every partition owned. A host that does not come
# back stops the upgrade there (the other two keep serving every fund); roll it back by pointing
# `current` at the previous release and restarting it.
#
# Needs: ssh access as a user allowed to run systemctl; the repository at /opt/mts-risk/repo on each
# host; this machine can run `mts-risk status --all` (NATS_URL and credentials of an operator).
set -euo pipefail
REV=${1:?usage: rolling-upgrade.sh <git-rev> [host ...]}
shift
HOSTS=("$@")
[ "${#HOSTS[@]}" -gt 0 ] || HOSTS=(n1 n2 n3)
PARTITIONS=${PARTITIONS:-64}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-120}
MTS_RISK=${MTS_RISK:-mts-risk}

# 0 once the engine whose instance is "<host>-<pid>" is ready and owns some partitions, and all
# partitions have an owner.
settled() {
  $MTS_RISK status --all 2>/dev/null | node -e '
    const [inst, parts] = [process.argv[1], Number(process.argv[2])];
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const es = JSON.parse(s || "{}").engines ?? [];
      const me = es.find((e) => e.instance === inst);
      const owned = es.reduce((n, e) => n + (Number(e.owned) || 0), 0);
      process.exit(me && me.ready && me.owned > 0 && owned === parts ? 0 : 1);
    });' "$1" "$PARTITIONS"
}

for h in "${HOSTS[@]}"; do
  echo "$h: installing $REV"
  ssh "$h" "set -e; d=/opt/mts-risk/releases/$REV; if [ ! -d \$d ]; then
      mkdir -p \$d && git -C /opt/mts-risk/repo fetch -q && git -C /opt/mts-risk/repo archive $REV | tar -x -C \$d
      (cd \$d && npm ci --no-audit --no-fund)
    fi
    ln -sfn \$d /opt/mts-risk/current.new && mv -T /opt/mts-risk/current.new /opt/mts-risk/current
    sudo systemctl restart mts-risk"
  pid=$(ssh "$h" systemctl show -p MainPID --value mts-risk)
  inst="$(ssh "$h" hostname)-$pid"
  echo "$h: restarted as $inst; waiting until it is ready and owns its share"
  deadline=$((SECONDS + READY_TIMEOUT_S))
  until settled "$inst"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$h: $inst not ready within ${READY_TIMEOUT_S}s; stopping the upgrade here" >&2
      exit 1
    fi
    sleep 1
  done
  echo "$h: upgraded"
done
