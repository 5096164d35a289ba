#!/usr/bin/env bash
# Benchmark: warm starts (restore a saved running machine) against cold boots,
# in the same run, on the same host, through the same `rehearse run`.
#   first command: from the start of the machine until its first step answered
#                  (bootSeconds + the first step), median of N, for tiny and debian
#   suite: 10 Debian scenarios (--jobs 2), --cold against warm (the state made beforehand)
#   compare: `rehearse compare debian debian-demo2`, --cold against warm
#   rollback: N rollbacks to a `checkpoint: {memory: true}` against N to a plain
#             `checkpoint` (disk state, then a boot), each step's time, median of N
# Usage: bench/warm.sh [N]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
swift build -c release --product rehearse >/dev/null
bin=$PWD/.build/release/rehearse
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# A state directory of its own (images shared): the runs' saved states are the benchmark's.
export REHEARSE_IMAGE_CACHE=${REHEARSE_IMAGE_CACHE:-${REHEARSE_STATE_DIR:-$HOME/.local/state/rehearse}/images}
export REHEARSE_STATE_DIR=$work/state REHEARSE_IMAGES=$PWD/Images
"$bin" image build tiny >/dev/null; "$bin" image build debian >/dev/null; "$bin" image build debian-demo2 >/dev/null
for g in tiny debian; do
  mem=$([ $g = debian ] && echo 512 || echo 256)
  printf 'machine: {image: %s, memory: %s}\nsteps:\n  - succeed: "true"\n' $g $mem > "$work/$g.yaml"
  "$bin" run "$work/$g.yaml" --json "$work/$g-make.json" >/dev/null     # makes the saved state
  for i in $(seq "$n"); do
    "$bin" run "$work/$g.yaml" --cold --json "$work/$g-cold-$i.json" >/dev/null
    "$bin" run "$work/$g.yaml" --json "$work/$g-warm-$i.json" >/dev/null
  done
done
for i in $(seq 10); do
  printf 'name: suite-%s\nmachine: {image: debian, memory: 512}\nsteps:\n  - succeed: echo %s > /var/tmp/n && systemctl is-active rehearse-demo\n  - run: cat /var/tmp/n\n    expect: {stdout_equals: "%s\\n"}\n' $i $i $i > "$work/suite-$i.yaml"
done
t0=$(date +%s.%N); "$bin" run "$work"/suite-*.yaml --jobs 2 --cold --json "$work/suite-cold.json" >/dev/null; t1=$(date +%s.%N)
"$bin" run "$work"/suite-*.yaml --jobs 2 --json "$work/suite-warm.json" >/dev/null; t2=$(date +%s.%N)
"$bin" compare debian debian-demo2 --json "$work/cmp-make.json" >/dev/null || true   # makes both sides' saved states
t5=$(date +%s.%N); "$bin" compare debian debian-demo2 --cold --json "$work/cmp-cold.json" >/dev/null || true; t3=$(date +%s.%N)
"$bin" compare debian debian-demo2 --json "$work/cmp-warm.json" >/dev/null || true; t4=$(date +%s.%N)
for kind in disk memory; do
  { printf 'name: rollback-%s\nmachine: {image: debian, memory: 512}\nsteps:\n  - succeed: echo before > /root/state && sync\n' $kind
    [ $kind = memory ] && echo '  - checkpoint: {memory: true}' || echo '  - checkpoint'
    for i in $(seq "$n"); do
      printf '  - succeed: echo after > /root/state && sync\n  - rollback\n  - run: cat /root/state\n    expect: {stdout_equals: "before\\n"}\n'
    done; } > "$work/rollback-$kind.yaml"
  "$bin" run "$work/rollback-$kind.yaml" --json "$work/rollback-$kind.json" >/dev/null
done
python3 - "$work" "$n" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" <<'PY'
import json, statistics, sys
work, n = sys.argv[1], int(sys.argv[2]); t = [float(x) for x in sys.argv[3:]]
def first(path):
    s = json.load(open(path))["scenarios"][0]
    assert s["outcome"] == "passed", s.get("message")
    return s["bootSeconds"] + s["steps"][0]["seconds"], s.get("restoredFrom")
print("| measure | cold | warm | warm / cold |")
print("|---|---|---|---|")
for g in ("tiny", "debian"):
    cold = [first(f"{work}/{g}-cold-{i}.json") for i in range(1, n + 1)]
    warm = [first(f"{work}/{g}-warm-{i}.json") for i in range(1, n + 1)]
    assert all(r is None for _, r in cold) and all(r for _, r in warm), "cold runs restored, or warm runs booted"
    c, w = statistics.median(x for x, _ in cold), statistics.median(x for x, _ in warm)
    print(f"| {g}: start to first command (median of {n}) | {c:.2f} s | {w:.2f} s | {w / c:.1%} |")
for name, path in (("cold", "suite-cold"), ("warm", "suite-warm")):
    res = json.load(open(f"{work}/{path}.json"))["scenarios"]
    assert all(s["outcome"] == "passed" for s in res), [s.get("message") for s in res]
    restored = sum(1 for s in res if s.get("restoredFrom"))
    print(f"<!-- suite {name}: {restored} of {len(res)} restored -->")
print(f"| 10 Debian scenarios, --jobs 2 (wall) | {t[1]-t[0]:.1f} s | {t[2]-t[1]:.1f} s | {(t[2]-t[1])/(t[1]-t[0]):.1%} ({(t[1]-t[0])/(t[2]-t[1]):.1f}x faster) |")
def rollbacks(kind):
    s = json.load(open(f"{work}/rollback-{kind}.json"))["scenarios"][0]
    assert s["outcome"] == "passed", s.get("message")
    return statistics.median(st["seconds"] for st in s["steps"] if st["kind"] == "rollback")
d, m = rollbacks("disk"), rollbacks("memory")
print(f"| debian: rollback, memory checkpoint against disk (median of {n}) | {d:.2f} s | {m:.2f} s | {m / d:.1%} |")
print(f"| compare debian debian-demo2 (wall) | {t[3]-t[5]:.1f} s | {t[4]-t[3]:.1f} s | {(t[4]-t[3])/(t[3]-t[5]):.1%} |")
PY
