#!/usr/bin/env bash
# Fuzzes the parsers that read outside input (fuzz/: cargo-fuzz targets, each a one-liner over
# a check of crates/fuzz-checks, whose corpus `cargo test -p fuzz-checks` replays). Installs
# cargo-fuzz once into the tools cache outside the clone (scripts/lib/tools.sh), then runs
# `cargo fuzz COMMAND ...` from the workspace root.
#
#   bash scripts/fuzz.sh list
#   bash scripts/fuzz.sh run xml_decode -- -runs=10000000
#   bash scripts/fuzz.sh run session_token -- -max_total_time=600
#   bash scripts/fuzz.sh cmin xml_decode          # minimise fuzz/corpus/xml_decode in place
#   bash scripts/fuzz.sh tmin xml_decode fuzz/artifacts/xml_decode/crash-...
#
# Builds with the default (stable) toolchain; no nightly is needed. cargo-fuzz is made for
# nightly: some of its options pass `-Z` flags (`--build-std`, `-Z`, the sanitizers), which
# RUSTC_BOOTSTRAP=1 lets stable accept. The build has its own target directory (fuzz/target)
# and runs one fuzzing process (cargo-fuzz's default `--jobs 1`): on a 2-core machine, run it
# under `nice -n 10`.
set -euo pipefail
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"

version="0.13.2"
dir="$tools_root/cargo-fuzz-$version"

if [ $# -eq 0 ]; then
    echo "usage: $tools_me list | run|cmin|tmin|build TARGET [ARGS...] [-- LIBFUZZER_ARGS...]" >&2
    exit 2
fi

# Once, under a lock, with its marker written last (scripts/lib/tools.sh).
install_once "$dir" "cargo-fuzz $version" \
    cargo install cargo-fuzz --version "$version" --locked --root "$dir" --quiet

command="$1"
shift
case "$command" in
    # The code under test is safe Rust (`unsafe_code = "forbid"` workspace-wide): the bugs to
    # find are panics (failed asserts, overflows, out-of-bounds indexing), which need no
    # sanitizer. AddressSanitizer could only catch a memory error inside a dependency's own
    # unsafe code, at several times the cost of every execution: no sanitizer. Debug
    # assertions and overflow checks stay on (cargo-fuzz's default without -O).
    run | cmin | tmin | build | check | coverage) set -- "$command" --sanitizer none "$@" ;;
    *) set -- "$command" "$@" ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$dir/bin:$PATH"
RUSTC_BOOTSTRAP=1 exec cargo fuzz "$@"
