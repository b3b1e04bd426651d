#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers on the trust path (cargo-fuzz, libFuzzer).
#   scripts/fuzz.sh TARGET SECONDS     one target, e.g. scripts/fuzz.sh bundle_verify 600
#   scripts/fuzz.sh all SECONDS        every target in turn
#   scripts/fuzz.sh list               the targets
# Installs a nightly toolchain and cargo-fuzz when missing. The committed seeds in
# fuzz/corpus/TARGET are copied to target/fuzz-corpus/TARGET, where the corpus grows;
# crashes land in fuzz/artifacts/TARGET (git-ignored) and make this script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(bundle_verify front_matter config propfind s3_list note rfc3161 witness)
if [ "${1:-}" = list ]; then printf '%s\n' "${targets[@]}"; exit 0; fi
target=${1:?usage: scripts/fuzz.sh TARGET|all|list SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all|list SECONDS}
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
run() {
  local t=$1
  mkdir -p "target/fuzz-corpus/$t"
  cp -n fuzz/corpus/"$t"/* "target/fuzz-corpus/$t/" 2>/dev/null || true
  # Real server answers are the XML targets' seeds.
  case $t in
    propfind) cp -n tests/fixtures/api-samples/*propfind*.xml "target/fuzz-corpus/$t/" ;;
    s3_list) cp -n tests/fixtures/api-samples/*s3-list-objects*.xml "target/fuzz-corpus/$t/" ;;
  esac
  echo "== fuzz $t for ${seconds}s"
  # -max_len: a bundle seed is 20 KiB; the rest are small. -timeout: a slow input is a bug.
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "target/fuzz-corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 2>&1 | tee "target/fuzz-$t.log" | grep -E '^(#[0-9]+ *(DONE|INITED)|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|Test unit written)' || true
  if grep -q -E 'SUMMARY|Test unit written|deadly signal' "target/fuzz-$t.log"; then
    echo "fuzz $t: FOUND A CRASH (see target/fuzz-$t.log and fuzz/artifacts/$t)" >&2
    return 1
  fi
  # A build error or a fuzzer that never started must fail too, not pass quietly.
  if ! grep -q 'stat::number_of_executed_units' "target/fuzz-$t.log"; then
    echo "fuzz $t: the fuzzer did not run to the end (see target/fuzz-$t.log)" >&2
    tail -20 "target/fuzz-$t.log" >&2
    return 1
  fi
}
if [ "$target" = all ]; then
  for t in "${targets[@]}"; do run "$t"; done
else
  run "$target"
fi
