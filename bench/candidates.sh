#!/usr/bin/env bash
# Boot to first command for each candidate form, against the `debian`
# generation (direct kernel boot) booted in the same run as the baseline.
# Each form boots ROUNDS times (default 3), one machine at a time; the median
# of `bootSeconds` (domain created → the harness's shell answers) is reported.
# Usage: bench/candidates.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
swift build -c release >/dev/null
bin=$PWD/.build/release/rehearse
out=$PWD/bench/results/candidates; rm -rf "$out"; mkdir -p "$out"
"$bin" image build tiny >/dev/null
images=$("$bin" image build debian | sed -n 's/^recipe debian ready in .*: //p')
bash Tests/Fixtures/nixos-system.sh "$out/nixos" >/dev/null
echo '{"ignition": {"version": "3.4.0"}}' > "$out/config.ign"
printf '#cloud-config\nruncmd:\n  - [touch, /run/from-user-data]\n' > "$out/user-data"
scenario() { # NAME MACHINE-YAML
  printf 'machine: %s\ntimeout: 300\nsteps:\n  - succeed: "true"\n' "$2" > "$out/$1.yaml"
}
scenario tiny '{generation: tiny}'
scenario debian '{generation: debian, memory: 512}'
scenario disk-image "{disk: $images/disk.qcow2, memory: 512}"
scenario disk-image+ignition "{disk: $images/disk.qcow2, ignition: $out/config.ign, memory: 512}"
scenario nixos-closure "{nixos: $out/nixos/result, memory: 512}"
scenario cloud-init "{generation: debian-cloud, memory: 512, cloud_init: {user_data: $out/user-data}}"
forms=(debian tiny disk-image disk-image+ignition nixos-closure cloud-init)
for r in $(seq "$rounds"); do
  for f in "${forms[@]}"; do
    "$bin" run "$out/$f.yaml" --json "$out/$f-$r.json" >/dev/null || { echo "$f failed (round $r)" >&2; exit 1; }
  done
done
python3 - "$out" "$rounds" "${forms[@]}" <<'PY'
import json, statistics, sys
out, rounds, forms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def secs(f):
    return [json.load(open(f"{out}/{f}-{r}.json"))["scenarios"][0]["bootSeconds"] for r in range(1, rounds + 1)]
base = statistics.median(secs("debian"))
print(f"{'form':22s} {'median s':>9s} {'min':>6s} {'max':>6s} {'vs debian':>10s}")
for f in forms:
    s = secs(f)
    print(f"{f:22s} {statistics.median(s):9.1f} {min(s):6.1f} {max(s):6.1f} {statistics.median(s) / base:9.2f}x")
PY
