#!/usr/bin/env bash
# Benchmark: rehearse against plain QEMU driven by a minimal socket client, in
# the same run on the same tiny image, under the same accelerator (TCG here).
#   boot: start of the machine until the first command has answered
#   round trip: `echo hi`, N times, after boot
# Usage: bench/run.sh [BOOTS] [COMMANDS]     (default 3 boots, 200 commands)
set -euo pipefail
cd "$(dirname "$0")/.."
boots=${1:-3}; n=${2:-200}
swift build -c release --product rehearse >/dev/null
bin=.build/release/rehearse
"$bin" image build tiny >/dev/null
image=$(ls -td "${REHEARSE_STATE_DIR:-$HOME/.local/state/rehearse}"/images/tiny-* | head -n1)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
{ echo "machine: {image: tiny}"; echo "steps:"; for _ in $(seq "$n"); do echo "  - succeed: echo hi"; done; } > "$work/rtt.yaml"
for i in $(seq "$boots"); do
  python3 bench/raw_client.py "$image" "$n" > "$work/raw-$i.json"
  REHEARSE_IMAGES=$PWD/Images "$bin" run "$work/rtt.yaml" --json "$work/rh-$i.json" --run-dir "$work/runs" >/dev/null
done
python3 - "$work" "$boots" <<'PY'
import json, statistics, sys
work, boots = sys.argv[1], int(sys.argv[2])
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
raw_boot, rh_boot, raw_rtt, rh_rtt = [], [], [], []
for i in range(1, boots + 1):
    r = json.load(open(f"{work}/raw-{i}.json"))
    raw_boot.append(r["boot"]); raw_rtt += r["rtts"]
    s = json.load(open(f"{work}/rh-{i}.json"))["scenarios"][0]
    assert s["outcome"] == "passed", s.get("message")
    steps = [st["seconds"] for st in s["steps"]]
    rh_boot.append(s["bootSeconds"] + steps[0]); rh_rtt += steps[1:]
    print(f"boot {i}: plain {r['boot']:.2f} s, p50 {statistics.median(r['rtts'])*1000:.2f} ms; "
          f"rehearse {rh_boot[-1]:.2f} s, p50 {statistics.median(steps[1:])*1000:.2f} ms", file=sys.stderr)
ms = lambda x: f"{x * 1000:.2f} ms"
rb, hb = statistics.median(raw_boot), statistics.median(rh_boot)
print(f"| measure | plain QEMU + socket client | rehearse | ratio |")
print(f"|---|---|---|---|")
print(f"| boot to first command (median of {boots}) | {rb:.2f} s | {hb:.2f} s | {hb / rb:.2f}x |")
for p in (50, 95):
    a, b = pct(raw_rtt, p), pct(rh_rtt, p)
    print(f"| `echo hi` round trip p{p} ({len(rh_rtt)} commands) | {ms(a)} | {ms(b)} | {b / a:.2f}x |")
PY
