#!/usr/bin/env bash
# make demo: run the bundled demo workload under libvramspy.so and show the trace it left.
# Uses the CUDA test doubles (a simulated 1 GiB device) unless a real driver is present.
set -euo pipefail
BUILD=${1:-build}
out="$BUILD/demo"
mkdir -p "$out"
rm -f "$out"/*.trace*
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
    export LD_LIBRARY_PATH="$BUILD/tests/fakes"
    echo "demo: no CUDA driver here; using the test doubles (simulated 1 GiB device)"
fi
LD_PRELOAD="$(pwd)/$BUILD/libvramspy.so" VRAMSPY_OUT="$out/demo.%p.trace" "$BUILD/tools/demo_workload"
trace=$(ls "$out"/demo.*.trace | head -n 1)
echo
echo "demo: events recorded in $trace:"
"$BUILD/vramspy-dump" "$trace" | grep '"type":"event"' |
    sed -E 's/.*"api":"([^"]*)".*"memory":"([^"]*)".*"size":([0-9]+).*"result":(-?[0-9]+).*/  \1 \2 \3 bytes -> \4/'
if [ -x "$BUILD/vramspy-report" ]; then
    echo
    "$BUILD/vramspy-report" "$trace" || true
fi
