#!/usr/bin/env bash
# Builds and runs every fuzz target for a time budget each (default 20 s), on the
# stable toolchain: cargo fuzz with `--sanitizer none` (see docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS] [TARGET...]      e.g. fuzz/run.sh 20   or   fuzz/run.sh 600 engine
#
# FUZZ_SEED=N fixes libFuzzer's random seed (CI does, so that a run there repeats the
# one that passed here rather than finding a new input at random).
# Installs cargo-fuzz if it is missing. Each target starts from its seed corpus
# (fuzz/corpus/<target>) and its saved regressions (fuzz/regressions/<target>, minus
# the known-open ones listed in fuzz/regressions/OPEN); what it learns is kept in
# fuzz/work/<target> (git-ignored) for the next run. Exits non-zero if any target
# found a crash, a timeout or an out-of-memory, and prints where the input is.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_EACH="${1:-20}"
shift || true
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=(frame sync_message engine); fi
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# --sanitizer none: no -Z flags, so the stable toolchain builds it. cargo fuzz still
# adds the sanitizer-coverage passes (stable codegen options), --cfg fuzzing, debug
# assertions (overflow checks) and release optimisation.
if ! cargo fuzz build --sanitizer none >work.build.log 2>&1; then
    cat work.build.log >&2
    echo "fuzz/run.sh: build failed" >&2
    exit 2
fi

max_len() {
    case "$1" in
        engine) echo 16384 ;;
        sync_message) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

failed=()
for t in "${TARGETS[@]}"; do
    work="work/$t"
    seeds="work/seeds-$t"
    rm -rf "$seeds"
    mkdir -p "$work" "$seeds" "artifacts/$t"
    cp corpus/"$t"/* "$seeds"/ 2>/dev/null || true
    for f in regressions/"$t"/*; do
        [ -f "$f" ] || continue
        if ! grep -qE "^$t/$(basename "$f")([[:space:]]|$)" regressions/OPEN 2>/dev/null; then
            cp "$f" "$seeds"/
        fi
    done
    echo "fuzz/run.sh: $t for ${SECONDS_EACH}s"
    log="work/$t.log"
    if cargo fuzz run --sanitizer none "$t" "$work" "$seeds" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        >"$log" 2>&1; then
        grep -E "^(Done|stat::number_of_executed_units)" "$log" | tail -n 1 || true
    else
        failed+=("$t")
        echo "fuzz/run.sh: $t FAILED; its output:" >&2
        # The panic and the top of its stack, then libFuzzer's summary.
        grep -A 40 -m 1 -E "panicked at|ERROR: libFuzzer" "$log" | grep -vE "^ +at /rustc/" >&2 || true
        grep -E "^SUMMARY|Test unit written" "$log" >&2 || true
        crash=$(grep -oE "[^[:space:]]*artifacts/$t/[a-z-]+-[0-9a-f]+" "$log" | tail -n 1 || true)
        if [ -n "$crash" ]; then
            case "$crash" in /*) where="$crash" ;; *) where="fuzz/$crash" ;; esac
            echo "fuzz/run.sh: the input is $where" >&2
            echo "  reproduce: (cd fuzz && cargo fuzz run --sanitizer none $t $crash)" >&2
            echo "  minimise:  (cd fuzz && cargo fuzz tmin --sanitizer none $t $crash)" >&2
            echo "  then copy it to fuzz/regressions/$t/ (docs/fuzzing.md)" >&2
        fi
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: failures in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, no failures"
