#!/usr/bin/env bash
# The test command: installs the real peer servers (MLflow, Buildbot; PyPI into
# target/peers, kept between runs), then runs every test. EVIDENT_SKIP_PEERS=1 skips the
# install, and the tests that need a real server say loudly that they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EVIDENT_SKIP_PEERS:-}" != 1 ]; then
  ./scripts/peers.sh
fi
exec cargo test --workspace --locked "$@"
