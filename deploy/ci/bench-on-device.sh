#!/usr/bin/env bash
# Bench exports on a real device and gate on its budgets and on a saved baseline.
#
# Two ways to run it (deploy/ci/README.md):
#   on a runner that reaches the device over SSH:   DEVICE=lab  deploy/ci/bench-on-device.sh EXPORT...
#   on a self-hosted runner on the device itself:   DEVICE_KIND=rpi5  deploy/ci/bench-on-device.sh EXPORT...
#
# Environment:
#   DEVICE            a device registered with `edgeaffect device add` (or registered here from
#                     DEVICE_SSH + DEVICE_KIND + DEVICE_HOST_KEY_FINGERPRINT when it is not)
#   DEVICE_SSH        USER@HOST[:PORT]; the key comes from the runner's ssh-agent or ~/.ssh
#   DEVICE_KIND       catalog kind (rpi5, jetson-orin-nano, ...)
#   DEVICE_HOST_KEY_FINGERPRINT   the device's SHA256:... host key: pinned, never accepted blind
#   DEVICE_ROOT       folder on the device (default: the device list's, ~/.edgeaffect)
#   DEVICE_SETUP      1: install this checkout's wheel on the device first (default 1 over SSH)
#   BUDGETS           budgets file (default roofline/budgets.toml)
#   BASELINE          saved exports to compare against, interleaved in the same run (default
#                     ci-baseline); the first run saves it (keep it in the CI cache)
#   OUT               where bench.json / bench.md / bench.xml go (default ci-out)
#   BENCH_SECONDS     seconds of timed runs per file (default 2)
#   EDGEAFFECT        the command (default: edgeaffect on PATH)
# Exit status: 0 all budgets held; 1 a budget or the latency gate failed; 2 bad input or a
# device fault (one line on stderr says which).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: DEVICE=NAME $0 EXPORT [EXPORT...]   (or DEVICE_KIND=KIND on the device itself)" >&2
    exit 2
fi
EDGEAFFECT=${EDGEAFFECT:-edgeaffect}
BUDGETS=${BUDGETS:-roofline/budgets.toml}
BASELINE=${BASELINE:-ci-baseline}
OUT=${OUT:-ci-out}
mkdir -p "$OUT" "$BASELINE"

where=()
if [ -n "${DEVICE:-}" ]; then
    if ! $EDGEAFFECT device list --json | python3 -c 'import json,sys; sys.exit(sys.argv[1] not in json.load(sys.stdin))' "$DEVICE"; then
        : "${DEVICE_SSH:?DEVICE $DEVICE is not registered: give DEVICE_SSH, DEVICE_KIND and DEVICE_HOST_KEY_FINGERPRINT}"
        : "${DEVICE_KIND:?give DEVICE_KIND (rpi5, jetson-orin-nano, ...)}"
        : "${DEVICE_HOST_KEY_FINGERPRINT:?give the device host key fingerprint (ssh-keyscan HOST | ssh-keygen -lf -)}"
        $EDGEAFFECT device add "$DEVICE" --ssh "$DEVICE_SSH" --kind "$DEVICE_KIND" \
            --host-key-fingerprint "$DEVICE_HOST_KEY_FINGERPRINT" ${DEVICE_ROOT:+--root "$DEVICE_ROOT"}
    fi
    $EDGEAFFECT device check "$DEVICE"
    if [ "${DEVICE_SETUP:-1}" = 1 ]; then
        $EDGEAFFECT device setup "$DEVICE"
    fi
    where=(--on "$DEVICE")
elif [ -n "${DEVICE_KIND:-}" ]; then
    where=(--device-kind "$DEVICE_KIND")
else
    echo "error: give DEVICE (a device reached over SSH) or DEVICE_KIND (this machine is that device)" >&2
    exit 2
fi

status=0
$EDGEAFFECT bench "$@" "${where[@]}" --budget "${BENCH_SECONDS:-2}" --budgets "$BUDGETS" --baseline "$BASELINE" --save-baseline \
    --json "$OUT/bench.json" --markdown "$OUT/bench.md" --junit "$OUT/bench.xml" || status=$?
exit "$status"
