#!/usr/bin/env bash
# Build Evident and run its main job on config/quickstart.toml: create a local ledger in
# ./quickstart-state, collect the sample AIMS documents in config/sample-evidence, show the
# evidence for the A.2 (AI policy) controls and readiness per control, sign a checkpoint,
# verify the whole ledger, then export the audit bundle and verify it offline as an
# auditor would.
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
