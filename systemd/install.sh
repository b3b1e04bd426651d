#!/bin/sh
# Install Evident as a systemd service on a Debian or Ubuntu server.
#
#   sudo systemd/install.sh [--start] [BINARY]
#
# BINARY defaults to target/release/evident (build it with `cargo build --release`).
# Installs the binary to /usr/local/bin, the unit, sysusers and tmpfiles entries, and a
# minimal working config at /etc/evident/evident.toml (one folder, /srv/evident/documents;
# an existing config is never replaced; every option is in config/reference.toml), creates
# the `evident` user and its directories, and with --start enables and starts the service.
# DESTDIR=/some/root installs into a staging tree without touching the running system.
set -eu

start=no
bin=target/release/evident
for arg in "$@"; do
  case "$arg" in
    --start) start=yes ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) bin=$arg ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=${DESTDIR:-}

if [ ! -x "$bin" ]; then
  echo "error: $bin is not an executable; build it with 'cargo build --release' or pass its path" >&2
  exit 2
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (sudo), or set DESTDIR to install into a staging tree" >&2
  exit 2
fi

install -d "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/sysusers.d" \
  "$root/usr/lib/tmpfiles.d" "$root/etc/evident" "$root/usr/local/share/man/man1" \
  "$root/usr/local/share/bash-completion/completions" "$root/usr/local/share/zsh/site-functions" \
  "$root/usr/local/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$root/usr/local/bin/evident"
# The manual page (the unit's Documentation=man:evident(1)) and shell completions, generated
# by the binary itself.
"$bin" man > "$root/usr/local/share/man/man1/evident.1"
"$bin" completions bash > "$root/usr/local/share/bash-completion/completions/evident"
"$bin" completions zsh > "$root/usr/local/share/zsh/site-functions/_evident"
"$bin" completions fish > "$root/usr/local/share/fish/vendor_completions.d/evident.fish"
install -m 0644 "$here/evident.service" "$root/etc/systemd/system/evident.service"
install -m 0644 "$here/evident.sysusers" "$root/usr/lib/sysusers.d/evident.conf"
install -m 0644 "$here/evident.tmpfiles" "$root/usr/lib/tmpfiles.d/evident.conf"
install -d -m 0700 "$root/etc/evident/credentials"
install -m 0644 "$here/../config/reference.toml" "$root/etc/evident/reference.toml"
if [ ! -e "$root/etc/evident/evident.toml" ]; then
  install -m 0640 "$here/../config/evident.toml" "$root/etc/evident/evident.toml"
  install -d -m 0755 "$root/srv/evident/documents"
  echo "installed a minimal config collecting /srv/evident/documents: edit $root/etc/evident/evident.toml (every option: $root/etc/evident/reference.toml)"
else
  echo "kept the existing $root/etc/evident/evident.toml"
fi

if [ -n "$root" ]; then
  echo "staged into $root; on the server run systemd-sysusers, systemd-tmpfiles --create and systemctl daemon-reload"
  exit 0
fi

systemd-sysusers /usr/lib/sysusers.d/evident.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/evident.conf
chgrp evident /etc/evident/evident.toml
systemctl daemon-reload
/usr/local/bin/evident --config /etc/evident/evident.toml config check
if [ "$start" = yes ]; then
  systemctl enable --now evident.service
  systemctl --no-pager status evident.service || true
  echo "verifier key (give it to your auditor): $(cat /var/lib/evident/verifier.vkey 2>/dev/null || echo 'see the journal')"
else
  echo "installed; start with: systemctl enable --now evident.service"
fi
