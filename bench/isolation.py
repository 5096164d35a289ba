#!/usr/bin/env python3
"""Where a command's round trip goes in the guest: the same tiny guest, plain
QEMU and a socket client (no libvirt, no harness), with three guest loops:

  bare       the loop evaluates the command itself (not isolated: `exit`,
             `cd` or `set -e` in one command would change the next)
  subshell   rehearse's own loop (`ShellProtocol.bootstrap`): each command in
             a subshell of its own, stderr spooled, framed with its status
  preforked  each command's subshell forked while the guest is idle,
             waiting on a FIFO for its command line

Usage: bench/isolation.py IMAGE_DIR [COMMANDS]   (bench/isolation.sh finds the image)
Prints one line per loop: p50 and p95 of `echo hi`."""
import os, socket, statistics, subprocess, sys, tempfile, time

image, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
SPOOL = 'for __rhd in /run /dev/shm /tmp /; do : >"$__rhd/.rehearse-stderr" 2>/dev/null && break; done; __rhe=$__rhd/.rehearse-stderr'
LOOPS = {
    "bare": r'while IFS= read -r l; do eval "$l"; printf "\001%sE0\n" $(($1+$2)); done',
    # rehearse's loop, as ShellProtocol.bootstrap defines it.
    "subshell": 'trap : INT; ' + SPOOL + r'; __rh() { __rhm=$(($1+$2)); printf "\001%sB\n" "$__rhm"; ( eval "$3" ) </dev/null 2>"$__rhe"; __rhs=$?; if [ -s "$__rhe" ]; then printf "\001%se\n" "$__rhm"; cat "$__rhe"; fi; printf "\001%sE%s\n" "$__rhm" "$__rhs"; }; while IFS= read -r __rhl; do eval "$__rhl"; done',
    # The next subshell already waits on a FIFO when the command arrives.
    "preforked": 'trap : INT; ' + SPOOL + r'; f=$__rhd/.rehearse-cmd; rm -f $f; mkfifo $f; sp() { ( IFS= read -r c <$f; eval "$c" ) </dev/null 2>"$__rhe" & p=$!; }; sp; __rh() { __rhm=$(($1+$2)); printf "\001%sB\n" "$__rhm"; printf "%s\n" "$3" >$f; wait $p; __rhs=$?; if [ -s "$__rhe" ]; then printf "\001%se\n" "$__rhm"; cat "$__rhe"; fi; printf "\001%sE%s\n" "$__rhm" "$__rhs"; sp; }; while IFS= read -r __rhl; do eval "$__rhl"; done',
}


def measure(loop_name):
    cmdline = open(os.path.join(image, "cmdline")).read().strip()
    tmp = tempfile.mkdtemp(prefix="rehearse-isolation-")
    sock = os.path.join(tmp, "s1.sock")
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot", "-kernel", os.path.join(image, "vmlinux"),
        "-initrd", os.path.join(image, "initrd"), "-append", cmdline,
        "-serial", "file:" + os.path.join(tmp, "s0.log"),
        "-serial", "unix:%s,server=on,wait=off" % sock,
    ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    try:
        s = socket.socket(socket.AF_UNIX)
        while True:
            try:
                s.connect(sock); break
            except OSError:
                time.sleep(0.005)
        buf = b""

        def until(marker, resend=None, gap=0.1):
            nonlocal buf
            s.settimeout(gap)
            while marker not in buf:
                if time.monotonic() - t0 > 120: raise SystemExit("guest never answered")
                try:
                    buf += s.recv(65536)
                except socket.timeout:
                    if resend: s.sendall(resend)
            buf = buf[buf.index(marker) + len(marker):]
        probe = b"\nprintf '\\001%sR\\n' $((1+2))\n"
        s.sendall(probe); until(b"\x013R", probe)
        body = LOOPS[loop_name]
        if loop_name == "bare":
            body = "set -- 0 0; " + body  # marker from the loop's own counter below
        s.sendall(b"stty 115200 raw -echo min 1 time 0; exec sh -c '" + body.encode() + b"'\n")
        k = 10

        def run(c):
            nonlocal k
            k += 1
            if loop_name == "bare":
                s.sendall(b"set -- %d 1; %s\n" % (k, c))
            else:
                s.sendall(b"__rh %d 1 '%s'\n" % (k, c))
            until(b"\x01%dE0\n" % (k + 1), None, 30)
        run(b"echo hi")
        rtts = []
        for _ in range(n):
            a = time.monotonic(); run(b"echo hi"); rtts.append(time.monotonic() - a)
        rtts.sort()
        return statistics.median(rtts), rtts[int(0.95 * (len(rtts) - 1))]
    finally:
        qemu.kill(); qemu.wait()


base = None
for name in LOOPS:
    p50, p95 = measure(name)
    base = base or p50
    print(f"| {name} | {p50 * 1000:.2f} ms | {p95 * 1000:.2f} ms | {p50 / base:.2f}x |")
