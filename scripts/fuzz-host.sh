#!/usr/bin/env bash
# Tern's host fuzzers (Fuzz/TernFuzz.swift): built with TernCore's own sources and the host tests'
# fakes under libFuzzer and the address sanitizer, then each target run for SECONDS from its checked-in
# corpus (Fuzz/corpus/TARGET, read only; for xlcfg also examples/) and what it found before
# (.build-fuzz/corpus/TARGET).
#   scripts/fuzz-host.sh [--seconds N] [TARGET...]     targets: xlcfg fdt evtchn grant image chosen control memory (default: all)
# A finding stops it: the input is kept as .build-fuzz/crash-TARGET-*, and the line to run it again
# is printed. `make fuzz-host` runs each for 5 minutes; `make test` for a short while.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/.build-fuzz
SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
seconds=60
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        xlcfg|fdt|evtchn|grant|image|chosen|control|memory) targets+=("$1"); shift ;;
        *) echo "usage: $0 [--seconds N] [xlcfg|fdt|evtchn|grant|image|chosen|control|memory ...]" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(xlcfg fdt evtchn grant image chosen control memory)

mkdir -p "$OUT"
sources=$(find "$ROOT/Sources/TernCore" -name '*.swift' | sort)
if [ ! -x "$OUT/tern-fuzz" ] || [ -n "$(find "$ROOT/Sources/TernCore" "$ROOT/Fuzz" "$ROOT/Tests/TernCoreTests/Fakes" "$0" \
        -newer "$OUT/tern-fuzz" \( -name '*.swift' -o -name '*.sh' \) | head -1)" ]; then
    echo "fuzz-host: building .build-fuzz/tern-fuzz (TernCore with libFuzzer and the address sanitizer)"
    rm -f "$OUT/TernCore.o" "$OUT/TernCore.swiftmodule" "$OUT/tern-fuzz"
    # The linker's warnings about the sanitizer's local symbols are noise; the compiler's status is not.
    # shellcheck disable=SC2086
    "$SWIFTC" -sanitize=fuzzer,address -O -enable-testing -parse-as-library -wmo -module-name TernCore \
        -emit-module -emit-module-path "$OUT/TernCore.swiftmodule" -c $sources -o "$OUT/TernCore.o" 2>&1 \
        | { grep -v "Cannot export local symbol" || true; }
    [ "${PIPESTATUS[0]}" = 0 ] && [ -s "$OUT/TernCore.o" ] || { echo "fuzz-host: TernCore did not build" >&2; exit 1; }
    "$SWIFTC" -sanitize=fuzzer,address -O -parse-as-library -module-name TernFuzz -I "$OUT" "$OUT/TernCore.o" \
        "$ROOT"/Fuzz/*.swift "$ROOT"/Tests/TernCoreTests/Fakes/*.swift -o "$OUT/tern-fuzz" 2>&1 \
        | { grep -v "Cannot export local symbol" || true; }
    [ "${PIPESTATUS[0]}" = 0 ] && [ -x "$OUT/tern-fuzz" ] || { echo "fuzz-host: the fuzzer did not build" >&2; exit 1; }
fi

for t in "${targets[@]}"; do
    mkdir -p "$OUT/corpus/$t"
    rm -f "$OUT"/crash-$t-*
    # Seeds: the checked-in corpus, and for xl.cfg the example configs.
    seeds=()
    [ -d "$ROOT/Fuzz/corpus/$t" ] && seeds+=("$ROOT/Fuzz/corpus/$t")
    [ "$t" = xlcfg ] && seeds+=("$ROOT/examples")
    log=$OUT/$t.log
    # Swift's own crash handler is off: libFuzzer reports the trap and keeps the input.
    if ! SWIFT_BACKTRACE=enable=no TERN_FUZZ_TARGET=$t "$OUT/tern-fuzz" -max_total_time="$seconds" -print_final_stats=1 \
            -artifact_prefix="$OUT/crash-$t-" "$OUT/corpus/$t" "${seeds[@]}" > "$log" 2>&1; then
        grep -E "ERROR|SUMMARY|Fatal error|failure|Test unit written" "$log" | head -20 >&2 || true
        crash=$(ls "$OUT"/crash-$t-* 2>/dev/null | head -1 || true)
        echo "fuzz-host: $t found a failure (log $log); again with: SWIFT_BACKTRACE=enable=no TERN_FUZZ_TARGET=$t $OUT/tern-fuzz ${crash:-CRASH-FILE}" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz-host: $t: ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?} edges, corpus $(ls "$OUT/corpus/$t" | wc -l), no failure"
done
