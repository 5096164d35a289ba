#!/usr/bin/env python3
"""The baseline: plain qemu-system-x86_64 with the same kernel, initrd and
command line as rehearse's tiny machine, the same two UARTs, and a minimal
socket client on the second one (no libvirt, no stderr capture, no subshell).

Prints one JSON object: boot-to-first-command seconds and round-trip times."""
import json, os, socket, subprocess, sys, tempfile, time

image, n = sys.argv[1], int(sys.argv[2])
cmdline = open(os.path.join(image, "cmdline")).read().strip()
tmp = tempfile.mkdtemp(prefix="rehearse-raw-")
sock = os.path.join(tmp, "s1.sock")
t0 = time.monotonic()
qemu = subprocess.Popen([
    "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "256", "-nodefaults", "-no-user-config",
    "-display", "none", "-no-reboot", "-kernel", os.path.join(image, "vmlinux"),
    "-initrd", os.path.join(image, "initrd"), "-append", cmdline,
    "-serial", "file:" + os.path.join(tmp, "s0.log"),
    "-serial", "unix:%s,server=on,wait=off" % sock,
], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    s = socket.socket(socket.AF_UNIX)
    while True:
        try:
            s.connect(sock); break
        except OSError:
            time.sleep(0.005)
    buf = b""
    def until(marker, resend=None, gap=0.1):
        global buf
        s.settimeout(gap)
        while marker not in buf:
            if time.monotonic() - t0 > 120: raise SystemExit("guest never answered")
            try:
                d = s.recv(65536)
                buf += d
            except socket.timeout:
                if resend: s.sendall(resend)
        buf = buf[buf.index(marker) + len(marker):]
    probe = b"\nprintf '\\001%sR\\n' $((1+2))\n"
    s.sendall(probe); until(b"\x013R", probe)
    # The same non-interactive loop rehearse uses, minus stderr and status framing.
    loop = b"stty 115200 raw -echo min 1 time 0; exec sh -c 'while IFS= read -r l; do eval \"$l\"; done'\n"
    s.sendall(loop)
    k = 10
    def cmd(c):
        global k
        k += 1
        line = b"%s; printf '\\001%%sX\\n' $((%d+1))\n" % (c, k)
        s.sendall(line)
        return b"\x01%dX\n" % (k + 1), line
    m, line = cmd(b"echo hi"); until(m, loop + line, 0.3)
    boot = time.monotonic() - t0
    rtts = []
    for _ in range(n):
        a = time.monotonic(); m, _ = cmd(b"echo hi"); until(m, None, 30); rtts.append(time.monotonic() - a)
    print(json.dumps({"boot": boot, "rtts": rtts}))
finally:
    qemu.kill(); qemu.wait()
