#!/usr/bin/env bash
# Installs the real peer servers the integration tests start: MLflow, Buildbot, WsgiDAV and
# moto into target/peers (one pinned Python venv each), s3s-fs from crates.io, Redmine from
# Debian's packages, and the tools that judge the export bundle: compliance-trestle (OSCAL)
# and Debian's Chromium.
# Idempotent: a venv whose marker file exists is kept. The tests start the servers
# themselves on 127.0.0.1 with random free ports.
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
# The second S3 implementation, which really checks SigV4 signatures (a wrong secret fails)
# and honours conditional writes (If-None-Match / If-Match on PUT): s3s-fs, the file-system
# server of the s3s framework (the S3 layer under RustFS), built from crates.io.
S3S_VERSION=0.14.1
if [ ! -f "$PEERS/s3s/.installed-$S3S_VERSION" ]; then
  echo "peers: installing s3s-fs $S3S_VERSION (cargo install)"
  rm -rf "$PEERS/s3s"
  cargo install --quiet --locked s3s-fs --version "$S3S_VERSION" --features binary --root "$PEERS/s3s"
  touch "$PEERS/s3s/.installed-$S3S_VERSION"
fi
# aiosmtpd is the real SMTP server (with STARTTLS) the alert e-mails go to.
install aiosmtpd aiosmtpd==1.4.6
# Schemathesis runs the API's OpenAPI document against the live server (issue 14).
install schemathesis schemathesis==4.32.5
# The independent judge of the OSCAL export (reference/ledger-formats.md).
install trestle compliance-trestle==5.2.0
# OpenSSL's CLI is the real RFC 3161 TSA of the anchoring tests and the auditor's stock
# tool for the README's by-hand checks.
if ! command -v openssl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "peers: installing openssl (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi
# PyYAML is the reference YAML parser the front-matter test compares with.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
# bsdtar (libarchive) is one of the three extractors the bundle reader is tested against.
if ! command -v bsdtar >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "peers: installing libarchive-tools (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libarchive-tools >/dev/null
fi
# Go's own transparency-log code (golang.org/x/mod/sumdb) runs the bundle README's proof
# checker; Debian packages both, and the program builds offline in GOPATH mode.
if { ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb ]; } && [ "$(id -u)" = 0 ]; then
  echo "peers: installing golang-go and golang-golang-x-mod-dev (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev >/dev/null
fi
# A real Prometheus scrapes the daemon's /metrics in the API tests.
if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "peers: installing prometheus (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# Debian's chromedriver drives Chromium through the dashboard test (WebDriver).
if ! command -v chromedriver >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "peers: installing chromium-driver (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
# Debian's Chromium renders the bundle's HTML report headless.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "peers: installing chromium (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "peers: chromium is not installed and this is not root; the report test will fail"
  fi
fi
# Redmine from Debian (reference/peers.md): apt-installed, the bundle told to use webrick,
# the REST API on, login required (so a bad key is a 401, not the anonymous user), and an
# admin API key written for the tests. The tests start the server on a free port.
redmine_setup() {
  if ! dpkg -s redmine redmine-sqlite >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then echo "peers: redmine is not installed and this is not root; skipping it"; return; fi
    echo "peers: installing redmine (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redmine redmine-sqlite >/dev/null
  fi
  mkdir -p "$PEERS/redmine"
  [ -s "$PEERS/redmine/api-key" ] && { echo "peers: redmine already set up"; return; }
  echo "gem 'webrick'" > /usr/share/redmine/Gemfile.local
  (cd /usr/share/redmine && bin/rails runner -e production '
Setting.rest_api_enabled = "1"
Setting.login_required = "1"
u = User.find_by_login("admin"); u.password = u.password_confirmation = "Admin12345!"
u.must_change_passwd = false; u.save!
puts "APIKEY=" + u.api_key' 2>/dev/null) | sed -n 's/^APIKEY=//p' > "$PEERS/redmine/api-key"
  test -s "$PEERS/redmine/api-key" || { echo "peers: redmine setup failed" >&2; exit 1; }
}
redmine_setup
echo "peers: ready in $PEERS"
