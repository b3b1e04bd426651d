#!/usr/bin/env bash
# Install the Debian package built by scripts/deb.sh on this machine (root), check it as
# an operator would, then remove and purge it. CI runs it on its own Debian.
#   scripts/deb-check.sh target/debian/evident_<version>_amd64.deb
set -euo pipefail
deb=${1:?usage: scripts/deb-check.sh PACKAGE.deb}
[ "$(id -u)" = 0 ] || { echo "deb-check: run as root (it installs the package)" >&2; exit 2; }
if dpkg -s evident >/dev/null 2>&1; then
  echo "deb-check: an evident package is already installed; refusing to replace it" >&2
  exit 2
fi
for tool in systemd-analyze man; do
  command -v "$tool" >/dev/null 2>&1 && continue
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd man-db >/dev/null
done
trap 'dpkg --purge evident >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb"
evident --version
test "$(stat -c '%U:%G %a' /etc/evident/evident.toml)" = "root:evident 640"
getent passwd evident >/dev/null
dpkg-query -W -f='${Conffiles}\n' evident | grep -q '/etc/evident/evident.toml'
man -w evident | grep -q '/usr/share/man/man1/evident.1'
unit=/usr/lib/systemd/system/evident.service
grep -q '^ExecStart=/usr/bin/evident ' "$unit"
# The packaged config passes the unit's own pre-start check.
evident --config /etc/evident/evident.toml config check >/dev/null
out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify is not clean:"; echo "$out"; exit 1; }
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null \
  | sed -n 's/.*Overall exposure level for evident.service: \([0-9.]*\).*/\1/p')
echo "installed unit exposure: ${exposure:-unknown}"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 1.3) }' || { echo "exposure ${exposure:-unknown} is above 1.3" >&2; exit 1; }
dpkg -r evident
test ! -e /usr/bin/evident
test -e /etc/evident/evident.toml   # a removed package keeps its conffile
dpkg --purge evident
test ! -e /etc/evident/evident.toml
trap - EXIT
echo "deb-check: installed, checked, removed and purged $deb"
