#!/usr/bin/env bash
# Installs the real peer servers the integration tests start (MLflow, Buildbot) into
# target/peers, one Python venv each, pinned. Idempotent: a venv whose marker file exists is
# kept. Servers are started by the tests themselves on 127.0.0.1 with random free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${EVIDENT_PEERS_DIR:-$PWD/target/peers}
mkdir -p "$PEERS"
PY=${PYTHON:-python3}

install() { # name, packages...
  local name=$1; shift
  local marker="$PEERS/$name/.installed-$(echo "$*" | sha256sum | cut -c1-12)"
  if [ -f "$marker" ]; then echo "peers: $name already installed"; return; fi
  echo "peers: installing $name ($*)"
  rm -rf "$PEERS/$name"
  "$PY" -m venv "$PEERS/$name"
  "$PEERS/$name/bin/pip" install -q --disable-pip-version-check "$@"
  touch "$marker"
}

# The skinny set is enough for the REST registry (see reference/peers.md): 358 MB, not 850.
install mlflow mlflow-skinny==3.17.2 flask flask-cors sqlalchemy alembic graphene huey \
  cryptography aiohttp gunicorn pandas
install buildbot buildbot==4.3.0 buildbot-worker==4.3.0 buildbot-www==4.3.0
install wsgidav wsgidav==4.4.0 cheroot
install moto "moto[server]==5.2.5"
echo "peers: ready in $PEERS"
