#!/usr/bin/env bash
# Benchmark: 8 tiny scenarios with `--jobs 1` against `--jobs 4`, in one run,
# and the harness's peak RSS while it drives 8 guests at once (`--jobs 8`).
# Each scenario boots, runs 20 commands and a 2-second sleep in the guest.
# Usage: bench/jobs.sh [ROUNDS]     (default 1; the ratio is per round)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
swift build -c release --product rehearse >/dev/null
bin=$PWD/.build/release/rehearse
"$bin" image build tiny >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for i in $(seq 8); do
  { echo "name: jobs-$i"; echo "machine: {image: tiny}"; echo "steps:"
    for _ in $(seq 20); do echo "  - succeed: echo hi"; done
    echo "  - succeed: sleep 2"; } > "$work/s$i.yaml"
  # For the memory measure: long enough that all 8 guests are up at once.
  { echo "name: hold-$i"; echo "machine: {image: tiny}"; echo "steps:"
    for _ in $(seq 20); do echo "  - succeed: echo hi"; done
    echo "  - wait_until_succeeds: test -e /run/never"; echo "    timeout: 45"; } > "$work/h$i.yaml"
done
export REHEARSE_IMAGES=$PWD/Images
run() { # jobs -> seconds; the harness's peak RSS (kB) goes to $work/hwm-JOBS
  local t0 t1 pid v hwm=0; t0=$(date +%s.%N)
  "$bin" run --jobs "$1" --run-dir "$work/runs" "$work"/s*.yaml >/dev/null & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status" 2>/dev/null || true); [ -n "$v" ] && hwm=$v
    sleep 0.2
  done
  wait "$pid"
  t1=$(date +%s.%N); echo "$hwm" > "$work/hwm-$1"; echo "$t1 - $t0" | bc
}
for r in $(seq "$rounds"); do
  one=$(run 1); four=$(run 4)
  # The harness's own high-water mark (VmHWM), not its QEMU children's.
  "$bin" run --jobs 8 --run-dir "$work/runs" "$work"/h*.yaml >/dev/null & pid=$!
  hwm=0 most=0
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status" 2>/dev/null || true); [ -n "$v" ] && hwm=$v
    q=$(pgrep -c qemu-system || true); [ "${q:-0}" -gt "$most" ] && most=$q
    sleep 0.5
  done
  wait "$pid" || true  # the hold scenarios fail at their timeout, by design
  rss=$hwm
  printf 'round %d: --jobs 1 %.1f s, --jobs 4 %.1f s, ratio %.2f; peak RSS %d MB with one guest at a time, %d MB with %d guests running at once\n' \
    "$r" "$one" "$four" "$(echo "$four / $one" | bc -l)" "$(($(cat "$work/hwm-1") / 1024))" "$((rss / 1024))" "$most"
done
