#!/usr/bin/env bash
# Build Evident and run its main job on config/quickstart.toml: create a local ledger in
# ./quickstart-state, collect the sample AIMS documents in config/sample-evidence, show the
# evidence for the A.2 (AI policy) controls and readiness per control, sign a checkpoint,
# verify the whole ledger, then export the audit bundle and verify it offline as an
# auditor would; finally print the dashboard's address and a read token for it.
# Safe to run again: unchanged documents add nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
evident() { ./target/release/evident --config config/quickstart.toml "$@"; }
set -x
[ -e quickstart-state/evident.db ] || evident init   # init refuses an existing ledger (exit 2)
evident collect
evident query A.2
evident checkpoint
evident proof 0
evident verify
evident coverage --controls A.2,A.5,A.6.2,9
evident export --out quickstart-state/audit-bundle.tar.gz
./target/release/evident verify quickstart-state/audit-bundle.tar.gz --key quickstart-state/verifier.vkey
set +x
# The dashboard and API: a read token (a new one each run; the old one is revoked).
evident token revoke quickstart-reader >/dev/null 2>&1 || true
token=$(evident --quiet token create quickstart-reader --scope read)
cat <<EOF

Dashboard and API: start the service in another terminal with
  ./target/release/evident --config config/quickstart.toml run
then open http://127.0.0.1:8742/ and sign in with this read token:
  $token
(the API: curl -H "Authorization: Bearer $token" http://127.0.0.1:8742/v1/coverage)
EOF
