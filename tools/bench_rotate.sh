#!/usr/bin/env bash
# The second harness of issue 22: tools/bench_libs run by rounds in rotated order (round i starts
# with variant i mod n), so that no variant always runs first or right after another, and the added
# cost taken per round (the variant's loop minus the untraced loop of the same round) then the
# median over rounds: a slow spell of the host moves both sides of a round's difference. make
# bench's shapes rows interleave in a fixed order and take medians of each side; claims in
# docs/PERFORMANCE.md hold on both.
#
# Usage: tools/bench_rotate.sh [BUILD]   (default build; make bench builds what it runs)
# Environment:
#   SPECS     "LIBS:DEPTH:THREADS:PATH ..." (default "10:35:1:cuda"); PATH cuda, driver or cached
#   ROUNDS    rounds (default 15); PAIRS timed pairs a thread (30000); WARMUP pairs before (10000)
#   SHIMS     other builds of the shim run in the same rounds: "NAME=/path/libvramspy.so ..."
#   COARSE=1  the shim also with VRAMSPY_CLOCK=coarse
#   SPIN_NS=N the control tools/bench_spin.c, spinning N ns a call (shares nothing between
#             threads: what it "adds" beyond 2N a pair is the program's, not an interposer's)
#   HEAPTRACK=0  no heaptrack (default: heaptrack on the malloc path of the same shape, when found)
set -euo pipefail
BUILD=${1:-build}
SPECS=${SPECS:-10:35:1:cuda}
ROUNDS=${ROUNDS:-15}
PAIRS=${PAIRS:-30000}
WARMUP=${WARMUP:-10000}
HEAPTRACK=${HEAPTRACK:-1}

die() { echo "bench_rotate: $*" >&2; exit 2; }
# Everything is checked before anything runs.
for n in "$ROUNDS" "$PAIRS" "$WARMUP"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" = 0 ] || die "not a count: '$n'"; done
[ "$ROUNDS" -ge 1 ] && [ "$PAIRS" -ge 1 ] || die "ROUNDS and PAIRS must be at least 1"
for spec in $SPECS; do
    [[ "$spec" =~ ^[0-9]+:[0-9]+:[0-9]+:(cuda|driver|cached)$ ]] || die "bad spec '$spec' (LIBS:DEPTH:THREADS:cuda|driver|cached)"
done
[ -z "${SPIN_NS:-}" ] || [[ "$SPIN_NS" =~ ^[0-9]+$ ]] || die "SPIN_NS is not a number of ns: '$SPIN_NS'"
[ "${COARSE:-0}" = 0 ] || [ "${COARSE:-0}" = 1 ] || die "COARSE must be 0 or 1"
[ "$HEAPTRACK" = 0 ] || [ "$HEAPTRACK" = 1 ] || die "HEAPTRACK must be 0 or 1"
declare -A so=()
variants="plain shim"
[ "${COARSE:-0}" = 1 ] && variants="$variants coarse"
for s in ${SHIMS:-}; do
    name=${s%%=*} path=${s#*=}
    [[ "$name" =~ ^[a-zA-Z0-9_]+$ ]] && [ "$name" != "$s" ] || die "bad SHIMS entry '$s' (NAME=/path/libvramspy.so)"
    case " $variants spin coarse malloc heaptrack " in *" $name "*) die "SHIMS name '$name' is taken" ;; esac
    [ -f "$path" ] || die "SHIMS: no file $path"
    so[$name]=$(cd "$(dirname "$path")" && pwd)/$(basename "$path")
    variants="$variants $name"
done
[ -d "$BUILD" ] || die "no build directory $BUILD (make bench builds what this runs)"
BUILD=$(cd "$BUILD" && pwd)
SHIM="$BUILD/libvramspy.so" LIBS="$BUILD/tools/bench_libs" MANY="$BUILD/tests/progs/many"
SPIN="$BUILD/tools/libbench_spin.so"
for f in "$SHIM" "$LIBS" "$MANY/libmany_0000.so"; do [ -e "$f" ] || die "$f is missing (make bench builds it)"; done
[ -z "${SPIN_NS:-}" ] || [ -e "$SPIN" ] || die "$SPIN is missing (make bench builds it)"
so[shim]=$SHIM
[ -n "${SPIN_NS:-}" ] && variants="$variants spin"
if [ "$HEAPTRACK" = 1 ]; then
    if command -v heaptrack > /dev/null; then variants="$variants malloc heaptrack"; else
        echo "bench_rotate: heaptrack not found: no heaptrack column" >&2; HEAPTRACK=0; fi
fi
export LD_LIBRARY_PATH="$BUILD/tests/fakes"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

loop() { "$LIBS" "$@" | awk '/ns_per_pair/ {print $2}'; }
echo "rotate: $ROUNDS rounds in rotated order, $WARMUP warm-up and $PAIRS timed pairs a thread; added = the round's loop minus its untraced loop, median over rounds (ns a pair)"
for spec in $SPECS; do
    IFS=: read -r nl d th path <<< "$spec"
    set -- $variants
    n=$#
    : > "$tmp/rows"
    for ((i = 0; i < ROUNDS; i++)); do
        set -- $variants
        k=$((i % n))
        order="${*:k+1} ${*:1:k}"
        for v in $order; do
            rm -f "$tmp"/t.*
            case $v in
                plain) x=$(loop "$path" "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP") ;;
                malloc) x=$(loop malloc "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP") ;;
                heaptrack) x=$(heaptrack -o "$tmp/t.ht" "$LIBS" malloc "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP" 2> /dev/null |
                    awk '/ns_per_pair/ {print $2}') ;;
                spin) x=$(LD_PRELOAD="$SPIN" BENCH_SPIN_NS="$SPIN_NS" loop "$path" "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP") ;;
                coarse) x=$(LD_PRELOAD="$SHIM" VRAMSPY_CLOCK=coarse VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/t.trace" \
                    loop "$path" "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP") ;;
                *) x=$(LD_PRELOAD="${so[$v]}" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/t.trace" \
                    loop "$path" "$MANY" "$nl" "$d" "$PAIRS" "$th" "$WARMUP") ;;
            esac
            [ -n "$x" ] || die "$spec: the $v run printed no ns_per_pair"
            echo "$i $v $x" >> "$tmp/rows"
        done
    done
    python3 - "$tmp/rows" "$spec" "$variants" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
spec, variants = sys.argv[2], sys.argv[3].split()
by = {}
for i, v, x in rows:
    by.setdefault(v, {})[int(i)] = float(x)
def added(v, base):
    return st.median(by[v][i] - by[base][i] for i in by[base])
line = [f"{spec}: plain {st.median(by['plain'].values()):.1f}"]
ht = added('heaptrack', 'malloc') if 'heaptrack' in by else None
for v in variants:
    if v in ('plain', 'malloc', 'heaptrack'):
        continue
    a = added(v, 'plain')
    line.append(f"{v} +{a:.1f}" + (f" ({a / ht:.2f}x heaptrack)" if ht and v != 'spin' else ""))
if ht:
    line.append(f"heaptrack +{ht:.1f} (malloc plain {st.median(by['malloc'].values()):.1f})")
print(", ".join(line))
PY
done
