#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets in fuzz/ (cargo-fuzz, libFuzzer), each for SECONDS
# (default 60) on a temporary copy of its committed seed corpus (fuzz/corpus/TARGET), so a
# run never grows the repository. Prints per target: executions, executions per second,
# coverage (libFuzzer's cov: edges and ft: features at the end), corpus size and findings.
# Exits non-zero when a target crashes or a property fails; the failing input is kept under
# fuzz/artifacts/TARGET/ (not committed) and its path printed, for
# `scripts/fuzz.sh --reproduce TARGET PATH` and a regression test.
#   scripts/fuzz.sh                        every target, 60 seconds each
#   scripts/fuzz.sh 600 chunked            one target, ten minutes
#   scripts/fuzz.sh --reproduce TARGET PATH   runs one input through TARGET once
#   FUZZ_BUILD=0 scripts/fuzz.sh ...       runs the targets as last built
# Uses `cargo +nightly fuzz` when a nightly toolchain is installed, else stable with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only flags); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

if ! command -v cargo-fuzz >/dev/null; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi
# No sanitizer: the gateway forbids unsafe code, so AddressSanitizer would find nothing the
# Rust checks do not, at a third of the speed (and its C dependencies would be instrumented
# for nothing). Debug assertions stay on: overflow and `debug_assert!` are findings too.
build=(--sanitizer none --debug-assertions)

# Where cargo-fuzz puts the target binaries; they are run directly, so a long run is not
# held up by cargo's lock and the build happens once, before any target runs.
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release

if [ "${1:-}" = "--reproduce" ]; then
  [ $# -eq 3 ] || die "usage: scripts/fuzz.sh --reproduce TARGET PATH"
  (cd fuzz && "${fuzz[@]}" build "${build[@]}" "$2")
  exec "$bin_dir/$2" "$3"
fi

seconds=60
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && "${fuzz[@]}" list)
fi

# FUZZ_BUILD=0 runs the binaries already built (for runs alongside one another).
if [ "${FUZZ_BUILD:-1}" != 0 ]; then
  log "building the fuzz targets (${fuzz[*]} build ${build[*]})"
  (cd fuzz && "${fuzz[@]}" build "${build[@]}")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
failed=0
for target in "${targets[@]}"; do
  [ -d "fuzz/corpus/$target" ] || die "no such target: $target (fuzz/corpus/$target is missing)"
  mkdir -p "$work/$target/artifacts"
  cp -r "fuzz/corpus/$target" "$work/$target/corpus"
  seeds=$(find "$work/$target/corpus" -type f | wc -l)
  options=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
    -artifact_prefix="$work/$target/artifacts/")
  [ -f "fuzz/dict/$target.dict" ] && options+=(-dict="$PWD/fuzz/dict/$target.dict")
  # Long enough for the decoders' line and section bounds (4 and 16 KiB) to be crossed.
  case $target in chunked | bearer_jwt) options+=(-max_len=20000) ;; esac
  log "fuzzing $target for ${seconds}s from $seeds seeds"
  code=0
  "$bin_dir/$target" "${options[@]}" "$work/$target/corpus" >"$work/$target/log" 2>&1 || code=$?
  stat() { sed -n "s/^stat::$1: *//p" "$work/$target/log" | tail -n 1; }
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target/log" | tail -n 1 || true)
  [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+' "$work/$target/log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corpus=$(find "$work/$target/corpus" -type f | wc -l)
  findings=$(find "$work/$target/artifacts" -type f | wc -l)
  if ((code != 0 || findings > 0)); then
    failed=1
    mkdir -p "fuzz/artifacts/$target"
    cp "$work/$target/artifacts/"* "fuzz/artifacts/$target/" 2>/dev/null || true
    grep -E 'panicked at|^thread|assertion|SUMMARY|Test unit written' "$work/$target/log" | head -n 20 >&2 || true
    for found in "$work/$target/artifacts/"*; do
      [ -e "$found" ] && printf 'failing input: fuzz/artifacts/%s/%s\n' "$target" "$(basename "$found")" >&2
    done
    ((findings > 0)) || { tail -n 30 "$work/$target/log" >&2; findings="exit $code"; }
  fi
  summary+=("$(printf '%-14s %12s %9s %6s %7s %8s %9s' "$target" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "$seeds/$corpus" "$findings")")
done

printf '\n%-14s %12s %9s %6s %7s %8s %9s\n' target executions exec/s cov ft corpus findings
printf '%s\n' "${summary[@]}"
printf '(%ss each; corpus: seeds/after the run; cov and ft: libFuzzer edges and features)\n' "$seconds"
exit "$failed"
