#!/usr/bin/env bash
# Benchmark (issue 11): a 2-machine Debian scenario against the same steps on
# one machine, in one run, and the TCP round trip between the two guests on
# their private network against one guest talking to itself over loopback.
# The steps: start a TCP echo server (perl, port 7000), wait for its port,
# then 1000 echo round trips from one perl process (no fork per round trip),
# once from the client to `server` and once to 127.0.0.1.
# Both boot cold (`--cold`): a machine on a private network cannot start
# from a saved state, and the single one could, which would not compare boots.
# Usage: bench/multi-machine.sh [ROUNDS]     (default 2; the order alternates)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
swift build -c release --product rehearse >/dev/null
bin=$PWD/.build/release/rehearse
export REHEARSE_IMAGES=$PWD/Images
"$bin" image build debian >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# The echo server and client, handed to the guests as a payload.
mkdir -p "$work/payload"
cat > "$work/payload/echo-server.pl" <<'PL'
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) { while (<$c>) { print $c $_ } }
PL
cat > "$work/payload/echo-client.pl" <<'PL'
use IO::Socket::INET; use Time::HiRes 'time';
my $c = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => 7000) or die "connect: $!";
setsockopt($c, 6, 1, 1);  # TCP_NODELAY
my @r;
for (1..1000) { my $t = time; print $c "ping\n"; <$c>; push @r, (time - $t) * 1e6 }
@r = sort { $a <=> $b } @r;
printf "p50 %.0f p95 %.0f\n", $r[500], $r[950];
PL
# Connects again and again (each try gives up after 0.5 s) until a
# connection works (`work`) or fails (`fail`); prints the seconds that took.
cat > "$work/payload/connect-until.pl" <<'PL'
use IO::Socket::INET; use Time::HiRes qw(time sleep);
my ($want, $host) = @ARGV;
my $t0 = time;
while (1) {
  my $c = IO::Socket::INET->new(PeerAddr => $host, PeerPort => 7000, Timeout => 0.5);
  my $ok = 0;
  if ($c) { eval { local $SIG{ALRM} = sub { die }; alarm 1; print $c "x\n"; $ok = defined(scalar <$c>); alarm 0 } }
  if ($ok == ($want eq "work")) { printf "%.3f\n", time - $t0; exit 0 }
  sleep 0.05 if $ok;
}
PL
serve='setsid -f perl /mnt/payload/echo-server.pl </dev/null >/dev/null 2>&1'
cat > "$work/one.yaml" <<YAML
name: one machine
machine: {generation: debian, memory: 512, payload: payload}
timeout: 600
steps:
  - succeed: $serve
  - wait_for_open_port: 7000
  - run: perl /mnt/payload/echo-client.pl 127.0.0.1
    name: loopback round trips
YAML
# A server serving, and its client, on the default private network.
pair="machines:
  server: {generation: debian, memory: 512, payload: payload}
  client: {generation: debian, memory: 512, payload: payload}
timeout: 600
steps:
  - succeed: $serve
    on: server
  - wait_for_open_port: 7000
    on: server"
cat > "$work/two.yaml" <<YAML
name: two machines
$pair
  - run: perl /mnt/payload/echo-client.pl server
    name: private network round trips
    on: client
  - run: perl /mnt/payload/echo-client.pl 127.0.0.1
    name: loopback round trips
    on: server
YAML
cat > "$work/link.yaml" <<YAML
name: link cut and restored
$pair
  - run: perl /mnt/payload/connect-until.pl work server
    on: client
  - link_down: client
  - run: perl /mnt/payload/connect-until.pl fail server
    name: until a connection fails
    on: client
  - link_up: client
  - run: perl /mnt/payload/connect-until.pl work server
    name: until a connection works
    on: client
YAML
run() { # scenario -> "WALL p50 p95 [p50 p95]"
  local t0 t1 json=$work/$1-$RANDOM.json
  t0=$(date +%s.%N)
  "$bin" run --cold --json "$json" --run-dir "$work/runs" "$work/$1.yaml" >"$work/$1.out" 2>&1 || { cat "$work/$1.out" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 - "$json" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["scenarios"][0]
rtts = [s["stdout"].split() for s in r["steps"] if "round trips" in s["name"]]
print(sys.argv[2], " ".join(f"{x[1]} {x[3]}" for x in rtts))
PY
}
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then one=$(run one); two=$(run two); else two=$(run two); one=$(run one); fi
  read -r w1 l50 l95 <<<"$one"; read -r w2 n50 n95 s50 s95 <<<"$two"
  printf 'round %d: one machine %.1f s, two machines %.1f s, ratio %.2f; TCP echo p50/p95: loopback %s/%s us (one machine), %s/%s us (the server, with the client on), private network %s/%s us, p50 ratio %.2f against the server'"'"'s loopback, %.2f against the single machine'"'"'s\n' \
    "$r" "$w1" "$w2" "$(echo "$w2 / $w1" | bc -l)" "$l50" "$l95" "$s50" "$s95" "$n50" "$n95" "$(echo "$n50 / $s50" | bc -l)" "$(echo "$n50 / $l50" | bc -l)"
done
# From the link step's start to the first failing (working) connection.
json=$work/link.json
"$bin" run --cold --json "$json" --run-dir "$work/runs" "$work/link.yaml" >"$work/link.out" 2>&1 || { cat "$work/link.out" >&2; exit 1; }
python3 - "$json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["scenarios"][0]["steps"]
for i, s in enumerate(st):
    if s["kind"] in ("link_down", "link_up"):
        then = float(st[i + 1]["stdout"])
        print(f"{s['kind']}: the step took {s['seconds']:.3f} s; the first {'failing' if s['kind'] == 'link_down' else 'working'} connection "
              f"{then:.3f} s after it (tries give up after 0.5 s): {s['seconds'] + then:.2f} s in all")
PY
