#!/usr/bin/env bash
# Builds the demo service package `rehearse-demo` in one of three versions:
#   1.0  good: answers "rehearse-demo 1.0: hello" on port 8080
#   2.0  good, visibly different: a new greeting, and a metrics port (8081)
#   3.0  broken the way upgrades really break: it needs a Perl module that
#        is not installed and that it forgot to declare, so the unit fails
#        to start after the upgrade
#   build-demo.sh VERSION OUT.deb
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$1 out=$2
pkg=$(mktemp -d); trap 'rm -rf "$pkg"' EXIT
case $version in
  1.0) greeting="hello" extra_use="" extra_ports="" ;;
  2.0) greeting="hello, world" extra_use="" extra_ports="push @ports, \$conf{metrics_port} || 8081;" ;;
  3.0) greeting="hello, world" extra_use="use JSON::XS;   # new in 3.0: needs libjson-xs-perl, not declared in Depends" extra_ports="push @ports, \$conf{metrics_port} || 8081;" ;;
  *) echo "build-demo.sh: unknown version $version" >&2; exit 2 ;;
esac
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc" "$pkg/usr/share/doc/rehearse-demo"
sed -e "s/@VERSION@/$version/g" -e "s/@GREETING@/$greeting/" -e "s/@EXTRA_USE@/$extra_use/" \
    -e "s/@EXTRA_PORTS@/$extra_ports/" "$here/rehearse-demo" > "$pkg/usr/bin/rehearse-demo"
chmod 755 "$pkg/usr/bin/rehearse-demo"
echo "port=8080" > "$pkg/etc/rehearse-demo.conf"
cat > "$pkg/lib/systemd/system/rehearse-demo.service" <<UNIT
[Unit]
Description=Rehearsal demo service $version
After=network.target

[Service]
ExecStart=/usr/bin/rehearse-demo

[Install]
WantedBy=multi-user.target
UNIT
echo "rehearse-demo $version: a demo service for Rehearsal's upgrade scenarios." > "$pkg/usr/share/doc/rehearse-demo/README"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: rehearse-demo
Version: $version
Architecture: all
Maintainer: Rehearsal <rehearsal@localhost>
Depends: perl-base
Section: misc
Priority: optional
Description: demo service for Rehearsal's upgrade scenarios
 Answers one line with its version on TCP port 8080.
CONTROL
echo /etc/rehearse-demo.conf > "$pkg/DEBIAN/conffiles"
# What dh_installsystemd generates, in short: enable on install, restart on
# upgrade, and never fail the package because the service failed.
cat > "$pkg/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemctl enable rehearse-demo.service >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    systemctl restart rehearse-demo.service || true
  fi
fi
SH
cat > "$pkg/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then systemctl stop rehearse-demo.service || true; fi
SH
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm"
# Fixed timestamps and ownership, so the same version always gives the same bytes.
find "$pkg" -exec touch -h -d @1700000000 {} +
SOURCE_DATE_EPOCH=1700000000 dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
