#!/usr/bin/env bash
# Wall time of `rehearse compare` (both generations booted at once) against the
# same comparison with the generations booted one after the other, measured in
# the same run, plus how long the probes take. Usage: bench/compare.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
swift build -c release >/dev/null
bin=.build/release/rehearse
out=bench/results; mkdir -p "$out"
"$bin" image build debian >/dev/null
for r in $(seq "$rounds"); do
  for mode in concurrent sequential; do
    flag=; [ $mode = sequential ] && flag=--sequential
    start=$(date +%s.%N)
    "$bin" compare debian debian-demo2 --scenario Scenarios/compare-demo.yaml $flag --json "$out/compare-$mode-$r.json" >/dev/null || true
    end=$(date +%s.%N)
    python3 - "$out/compare-$mode-$r.json" "$mode" "$start" "$end" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:10s} wall {float(sys.argv[4]) - float(sys.argv[3]):6.1f} s  boots {c['old']['bootSeconds'][0]:.1f} s / {c['new']['bootSeconds'][0]:.1f} s"
      f"  probes {c['old']['snapshot']['probeSeconds']:.1f} s / {c['new']['snapshot']['probeSeconds']:.1f} s")
PY
  done
done
