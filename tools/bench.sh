#!/usr/bin/env bash
# make bench: the shim's cost per intercepted call against the same program without it, in one
# run, at call depths of about 5 and 35 frames; against heaptrack per allocation+free pair, in
# tools/bench_pairs (the whole threaded run timed, no warm-up) and in the shapes users run
# (tools/bench_libs: hundreds of libraries, deep stacks, threads, the driver path; the loop timed
# after warm-up); trace bytes per event; start-up cost of a process that never touches CUDA,
# against an empty preloaded library; analyzer throughput. Figures go in docs/PERFORMANCE.md
# (with the command: make bench).
set -euo pipefail
BUILD=${1:-build}
PAIRS=${PAIRS:-200000}
REPEAT=${REPEAT:-5}
export LD_LIBRARY_PATH="$BUILD/tests/fakes"
SHIM="$(cd "$BUILD" && pwd)/libvramspy.so"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# BENCH_PARTS: which parts run (default all): comparison shapes calls python storm ring startup
# report, space-separated, e.g. BENCH_PARTS="shapes startup" make bench.
PARTS=${BENCH_PARTS:-all}
for p in $PARTS; do
    case " all comparison shapes calls python storm ring startup report " in
    *" $p "*) ;;
    *) echo "bench: unknown part '$p' in BENCH_PARTS (all comparison shapes calls python storm ring startup report)" >&2
       exit 2 ;;
    esac
done
part() { [ "$PARTS" = all ] || [[ " $PARTS " == *" $1 "* ]]; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"

# The peer: heaptrack recording malloc/free, against vramspy recording the fake cudaMalloc/cudaFree,
# per allocation+free pair, same program (tools/bench_pairs.c), same depth, each minus its own
# untraced run; the four runs of a configuration interleaved, REPEAT times; medians and minimums.
HT_PAIRS=${HT_PAIRS:-100000}
if ! command -v heaptrack > /dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq heaptrack) > /dev/null 2>&1 || true
fi
have_ht=1
command -v heaptrack > /dev/null || { have_ht=0; echo "heaptrack: not installed and not root to install it: the comparison is skipped"; }
pairs() { "$@" | awk '/ns_per_pair/ {print $2}'; }
stats() { sort -g | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[int((NR+1)/2)], a[1]}'; }
# Medians and minimums of the four runs of a configuration (PREFIX.cplain, .cshim, .mplain, .mht)
# into cp cpm, cs csm, mp mpm, mh mhm (nan without heaptrack).
four_stats() {
    read -r cp cpm < <(stats < "$1.cplain")
    read -r cs csm < <(stats < "$1.cshim")
    read -r mp mpm < <(stats < "$1.mplain")
    if [ "$have_ht" = 1 ] && [ -s "$1.mht" ]; then
        read -r mh mhm < <(stats < "$1.mht")
    else
        mh=nan mhm=nan
    fi
}
if part comparison; then
    echo "comparison: $HT_PAIRS allocation+free pairs per run, $REPEAT interleaved runs, ns per pair (median / minimum)"
    printf '%-7s %-7s %-19s %-19s %-19s %-19s %-9s %-9s %s\n' depth threads "vramspy added" "  (cudaMalloc plain" "  traced)" \
        "heaptrack added" "  (malloc plain" "  traced)" ratio
    for depth in 5 35 100; do
        for threads in 1 2; do
            rm -f "$tmp"/r.*
            for i in $(seq "$REPEAT"); do
                pairs "$BUILD/tools/bench_pairs" cuda "$depth" "$HT_PAIRS" "$threads" >> "$tmp/r.cplain"
                rm -f "$tmp"/t.trace*
                LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/t.trace" \
                    pairs "$BUILD/tools/bench_pairs" cuda "$depth" "$HT_PAIRS" "$threads" >> "$tmp/r.cshim"
                pairs "$BUILD/tools/bench_pairs" malloc "$depth" "$HT_PAIRS" "$threads" >> "$tmp/r.mplain"
                if [ "$have_ht" = 1 ]; then
                    rm -f "$tmp"/ht.*
                    pairs heaptrack -o "$tmp/ht" "$BUILD/tools/bench_pairs" malloc "$depth" "$HT_PAIRS" "$threads" \
                        2> /dev/null >> "$tmp/r.mht" || true
                fi
            done
            four_stats "$tmp/r"
            awk -v d="$depth" -v t="$threads" -v cp="$cp" -v cpm="$cpm" -v cs="$cs" -v csm="$csm" \
                -v mp="$mp" -v mpm="$mpm" -v mh="$mh" -v mhm="$mhm" 'BEGIN {
                va = cs - cp; vam = csm - cpm; ha = mh - mp; ham = mhm - mpm
                printf "%-7d %-7d %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %.2f\n",
                       d, t, va, vam, cp, cpm, cs, csm, ha, ham, mp, mpm, mh, mhm, (ha > 0 ? va / ha : 0) }'
        done
    done
fi

if part shapes; then
    # The shapes users run (issue 22), in the harness that times only the loop after warm-up
    # (tools/bench_libs.c): NLIBS copies of one library loaded (identical code at page-aligned
    # addresses: return addresses coincide in their low bits), a call chain DEPTH deep spread over
    # them, THREADS threads each timing its own loop after SHAPE_WARMUP pairs and a barrier. Paths:
    # cuda (the runtime's cudaMalloc/cudaFree), driver (cuMemAlloc/cuMemFree found through
    # cuGetProcAddress, as NVIDIA's static runtime finds them: the shim sees no runtime symbol),
    # cached (the cuda path with the double's per-thread block cache: no global lock in the double,
    # so the thread rows measure the shim's own scaling rather than the double's futex). Each
    # against heaptrack recording malloc/free in the same program, shape and loop. hit: the shim's
    # unwind-rule cache over the traced runs (its VRAMSPY_METRICS counters: 1 - rules computed /
    # frames walked, warm-up included); replayed: the frames replayed from the thread's last walk (the
    # walk memo: no rule looked up) over all frames walked. SHIM_BASE=PATH: another build of the shim
    # (an earlier commit's) run in the same rounds, its added cost on a line under each row. The
    # shapes in COARSE_SHAPES also run the shim with VRAMSPY_CLOCK=coarse in the same rounds (event
    # times at the kernel's tick, no TSC read: heaptrack's own are a timer thread's 10 ms), on a
    # line of their own with its ratio to heaptrack.
    COARSE_SHAPES=${COARSE_SHAPES:-"10:35:1:cuda 10:40:1:cuda 300:40:1:cuda"}
    SHAPE_PAIRS=${SHAPE_PAIRS:-50000}
    SHAPE_WARMUP=${SHAPE_WARMUP:-10000}
    SHAPES=${SHAPES:-"10:40:1:cuda 300:40:1:cuda 1000:40:1:cuda 10:64:1:cuda 300:64:1:cuda 1000:64:1:cuda 300:100:1:cuda 300:40:2:cuda 300:40:4:cuda 300:40:1:cached 300:40:2:cached 300:40:4:cached 10:35:1:cuda 10:40:1:driver 300:40:1:driver"}
    MANY="$BUILD/tests/progs/many"
    libpairs() { "$BUILD/tools/bench_libs" "$@" | awk '/ns_per_pair/ {print $2}'; }
    metric() { awk -v m="$1" '$1 ~ "^" m "[{]" {s += $2} END {print s + 0}' "$2"; }
    echo "shapes: the loop after $SHAPE_WARMUP warm-up pairs, $SHAPE_PAIRS pairs per thread, $REPEAT interleaved runs, ns per pair (median / minimum)"
    printf '%-6s %-6s %-7s %-7s %-19s %-19s %-19s %-19s %-19s %-19s %-6s %-9s %s\n' libs depth threads path "vramspy added" \
        "  (plain" "  traced)" "heaptrack added" "  (malloc plain" "  traced)" ratio hit replayed
    for spec in $SHAPES; do
        IFS=: read -r nl d th path <<< "$spec"
        rm -f "$tmp"/l.* "$tmp"/m.prom
        frames=0 computed=0 replayed=0
        for i in $(seq "$REPEAT"); do
            libpairs "$path" "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" "$SHAPE_WARMUP" >> "$tmp/l.cplain"
            rm -f "$tmp"/t.trace*
            LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/t.trace" VRAMSPY_METRICS="$tmp/m.prom" \
                libpairs "$path" "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" "$SHAPE_WARMUP" >> "$tmp/l.cshim"
            if [[ " $COARSE_SHAPES " == *" $spec "* ]]; then
                rm -f "$tmp"/k.trace*
                LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/k.trace" VRAMSPY_CLOCK=coarse \
                    libpairs "$path" "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" "$SHAPE_WARMUP" >> "$tmp/l.ccoarse"
            fi
            if [ -n "${SHIM_BASE:-}" ]; then
                rm -f "$tmp"/b.trace*
                LD_PRELOAD="$SHIM_BASE" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/b.trace" \
                    libpairs "$path" "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" "$SHAPE_WARMUP" >> "$tmp/l.cbase"
            fi
            if [ -f "$tmp/m.prom" ]; then
                frames=$((frames + $(metric vramspy_stack_frames_total "$tmp/m.prom")))
                computed=$((computed + $(metric vramspy_unwind_rules_computed_total "$tmp/m.prom")))
                replayed=$((replayed + $(metric vramspy_stack_frames_replayed_total "$tmp/m.prom")))
            fi
            libpairs malloc "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" "$SHAPE_WARMUP" >> "$tmp/l.mplain"
            if [ "$have_ht" = 1 ]; then
                rm -f "$tmp"/ht.*
                heaptrack -o "$tmp/ht" "$BUILD/tools/bench_libs" malloc "$MANY" "$nl" "$d" "$SHAPE_PAIRS" "$th" \
                    "$SHAPE_WARMUP" 2> /dev/null | awk '/ns_per_pair/ {print $2}' >> "$tmp/l.mht" || true
            fi
        done
        four_stats "$tmp/l"
        awk -v nl="$nl" -v d="$d" -v t="$th" -v path="$path" -v cp="$cp" -v cpm="$cpm" -v cs="$cs" -v csm="$csm" \
            -v mp="$mp" -v mpm="$mpm" -v mh="$mh" -v mhm="$mhm" -v fr="$frames" -v co="$computed" -v rp="$replayed" 'BEGIN {
            va = cs - cp; vam = csm - cpm; ha = mh - mp; ham = mhm - mpm
            printf "%-6d %-6d %-7d %-7s %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %7.1f / %-9.1f %-6.2f %-9s %s\n",
                   nl, d, t, path, va, vam, cp, cpm, cs, csm, ha, ham, mp, mpm, mh, mhm, (ha > 0 ? va / ha : 0),
                   (fr + rp > 0 ? sprintf("%.3f%%", 100 - 100 * co / (fr + rp)) : "n/a"),
                   (fr + rp > 0 ? sprintf("%.1f%%", 100 * rp / (fr + rp)) : "n/a") }'
        if [ -s "$tmp/l.ccoarse" ]; then
            read -r ck ckm < <(stats < "$tmp/l.ccoarse")
            awk -v cp="$cp" -v cpm="$cpm" -v ck="$ck" -v ckm="$ckm" -v mp="$mp" -v mh="$mh" 'BEGIN {
                printf "       VRAMSPY_CLOCK=coarse: added %.1f / %.1f, ratio to heaptrack %.2f\n",
                       ck - cp, ckm - cpm, (mh > mp ? (ck - cp) / (mh - mp) : 0) }'
        fi
        if [ -s "$tmp/l.cbase" ]; then
            read -r cb cbm < <(stats < "$tmp/l.cbase")
            awk -v cp="$cp" -v cpm="$cpm" -v cs="$cs" -v csm="$csm" -v cb="$cb" -v cbm="$cbm" -v b="$SHIM_BASE" 'BEGIN {
                printf "       baseline shim %s: added %.1f / %.1f (this one %.1f / %.1f, ratio %.2f)\n",
                       b, cb - cp, cbm - cpm, cs - cp, csm - cpm, (cb > cp ? (cs - cp) / (cb - cp) : 0) }'
        fi
    done
fi

if part calls; then
    echo "calls: 200000 cudaMalloc/cudaFree pairs per run against the test-double runtime, median of $REPEAT runs"
    for depth in 5 35; do
        for i in $(seq "$REPEAT"); do
            "$BUILD/tools/bench_calls" "$depth" "$PAIRS" | awk '{print $2}' >> "$tmp/plain.$depth"
            rm -f "$tmp"/t.trace*
            LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_OUT="$tmp/t.trace" \
                "$BUILD/tools/bench_calls" "$depth" "$PAIRS" | awk '{print $2}' >> "$tmp/shim.$depth"
        done
        p=$(median < "$tmp/plain.$depth")
        s=$(median < "$tmp/shim.$depth")
        awk -v d="$depth" -v p="$p" -v s="$s" 'BEGIN {
            printf "depth %2d: plain %.1f ns/call, shim %.1f ns/call, overhead %.1f ns/call, ratio %.2f\n",
                   d, p, s, s - p, s / p }'
        if [ "$depth" = 35 ]; then
            bytes=$(stat -c %s "$tmp/t.trace")
            events=$("$BUILD/vramspy-dump" "$tmp/t.trace" | grep -c '"type":"event"')
            ring=$((4 * 1024 * 1024 + 4096))
            awk -v b="$bytes" -v r="$ring" -v e="$events" 'BEGIN {
                printf "trace: %d events, %.1f bytes per event (file %d bytes less the %d-byte header+ring)\n",
                       e, (b - r) / e, b, r }'
        fi
    done
fi
if part python; then
    # Python frames (issue 21): per allocation at a Python depth of 20 frames, the shim with
    # VRAMSPY_PYTHON=1 against VRAMSPY_PYTHON=0 (and the plain run), interleaved in one run, medians.
    PY=$(command -v python3 || true)
    if [ -n "$PY" ]; then
        PYPAIRS=${PYPAIRS:-100000}
        for i in $(seq "$REPEAT"); do
            "$PY" tools/bench_python.py "$BUILD/tests/fakes/libcudart.so.13" 20 "$PYPAIRS" | awk '{print $2}' >> "$tmp/py.plain"
            for on in 0 1; do
                rm -f "$tmp"/p.trace*
                LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_PYTHON=$on VRAMSPY_OUT="$tmp/p.trace" \
                    "$PY" tools/bench_python.py "$BUILD/tests/fakes/libcudart.so.13" 20 "$PYPAIRS" | awk '{print $2}' >> "$tmp/py.$on"
            done
        done
        p=$(median < "$tmp/py.plain"); off=$(median < "$tmp/py.0"); on=$(median < "$tmp/py.1")
        awk -v p="$p" -v off="$off" -v on="$on" -v v="$("$PY" -c 'import platform; print(platform.python_version())')" 'BEGIN {
            printf "python %s, 20 Python frames: plain %.1f ns/pair, shim %.1f, shim with Python frames %.1f: Python frames add %.1f ns per allocation (ratio %.2f)\n",
                   v, p, off, on, on - off, on / off }'
    else
        echo "python: no python3: the Python frames' cost is not measured"
    fi
fi
if part storm; then
    # Trace size, issue #13's measure: a 200,000-call storm of varied sizes on 4 threads recorded with
    # a 64 KiB ring, the whole file (header and ring included) over its events, nothing dropped.
    rm -f "$tmp"/s.trace*
    LD_PRELOAD="$SHIM" VRAMSPY_QUIET=1 VRAMSPY_RING_SIZE=64K VRAMSPY_OUT="$tmp/s.trace" \
        "$BUILD/tests/progs/prog_storm" 4 25000 > /dev/null
    bytes=$(stat -c %s "$tmp/s.trace")
    events=$("$BUILD/vramspy-dump" "$tmp/s.trace" | grep -c '"type":"event"')
    dropped=$("$BUILD/vramspy-report" --format json "$tmp/s.trace" | python3 -c 'import json,sys; print(json.load(sys.stdin)["trace"]["dropped"])')
    awk -v b="$bytes" -v e="$events" -v d="$dropped" 'BEGIN {
        printf "storm: %d events on 4 threads, 64 KiB ring, %d dropped: file %d bytes, %.1f bytes per event (whole file)\n",
               e, d, b, b / e }'
fi
if part ring; then
    # The ring alone (no CUDA, no test double): format-2 records against format-3 batches.
    for threads in 1 2; do "$BUILD/tools/bench_ring" 2000000 "$threads"; done
fi
if part startup; then
    # Start-up: `sh -c true` plain, with the shim and with an empty preloaded library, interleaved, on
    # two harnesses: posix_spawn with a two-variable environment, and Python's subprocess with the
    # caller's whole environment; STARTS (1,000) interleaved starts of each, medians: the difference between
    # two libraries' start-up is tens of microseconds in starts of 2 ms that move by hundreds.
    STARTS=${STARTS:-1000}
    "$BUILD/tools/bench_startup" "$STARTS" "$SHIM" "$(cd "$BUILD" && pwd)/tools/libempty.so"
    if command -v python3 > /dev/null; then
        python3 "$(dirname "$0")/bench_startup.py" "$STARTS" "$SHIM" "$(cd "$BUILD" && pwd)/tools/libempty.so"
    fi
fi

if part report; then
    # The analyzer: events per second over a 10-million-event trace (EVENTS overrides).
    EVENTS=${EVENTS:-10000000}
    "$BUILD/tools/bench_report_gen" "$tmp/big.trace" "$EVENTS"
    size=$(stat -c %s "$tmp/big.trace")
    sync
    # three runs (file in the page cache), the median time and the largest peak RSS
    for i in 1 2 3; do
        start=$(date +%s.%N)
        /usr/bin/time -f "%M" -o "$tmp/rss" "$BUILD/vramspy-report" --format json "$tmp/big.trace" > "$tmp/big.json"
        end=$(date +%s.%N)
        awk -v s="$start" -v t="$end" 'BEGIN { printf "%.3f\n", t - s }' >> "$tmp/rtimes"
        cat "$tmp/rss" >> "$tmp/rsses"
    done
    secs=$(median < "$tmp/rtimes")
    rss=$(sort -g "$tmp/rsses" | tail -1)
    events=$(python3 -c "import json;print(json.load(open('$tmp/big.json'))['trace']['events'])" 2>/dev/null ||
             grep -m1 '"events"' "$tmp/big.json" | tr -dc 0-9)
    awk -v e="$events" -v d="$secs" -v b="$size" -v r="$rss" 'BEGIN {
        printf "report: %d events (%.0f MB trace) in %.2f s (median of 3): %.2f million events/s, peak RSS %.0f MB\n",
               e, b / 1e6, d, e / d / 1e6, r / 1024 }'
fi
