#!/usr/bin/env bash
# make demo: the README's first command. Runs the bundled demo workload (a toy inference worker
# that leaks, fragments its memory and falls back to managed memory after an out-of-memory) under
# `vramspy run`, prints the report, and writes an SVG timeline and a Perfetto trace beside it.
# Uses the CUDA test doubles (a simulated 1 GiB device) unless a real driver is present. The
# allocations are labelled by purpose (tools/demo_purposes.json) so the out-of-memory breakdown and
# the report show bytes by purpose.
set -euo pipefail
BUILD=${1:-build}
out="$BUILD/demo"
rm -rf "$out"
mkdir -p "$out"
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
    export LD_LIBRARY_PATH="$BUILD/tests/fakes"
    echo "demo: no CUDA driver on this machine: using the CUDA test doubles (a simulated 1 GiB device)"
fi
export VRAMSPY_PURPOSES="$(dirname "$0")/demo_purposes.json"
echo "demo: VRAMSPY_PURPOSES=$VRAMSPY_PURPOSES"
echo "demo: $BUILD/vramspy run --out $out --fail-on leak,host-fallback,fragmentation -- $BUILD/tools/demo_workload"
echo
status=0
"$BUILD/vramspy" run --out "$out" --fail-on leak,host-fallback,fragmentation -- "$BUILD/tools/demo_workload" || status=$?
trace=$(ls "$out"/vramspy.*.trace | head -n 1)
"$BUILD/vramspy-report" --format svg -o "$out/demo.svg" "$trace"
"$BUILD/vramspy-report" --format perfetto -o "$out/demo.perfetto.json" "$trace"
"$BUILD/vramspy-report" --format folded -o "$out/demo.folded" "$trace"
echo
echo "demo: exit status $status (1: a --fail-on finding, as a CI job would see it)"
echo "demo: trace           $trace"
echo "demo: SVG timeline    $out/demo.svg (open in any browser)"
echo "demo: Perfetto trace  $out/demo.perfetto.json (ui.perfetto.dev or chrome://tracing)"
echo "demo: flame graph     $out/demo.folded (flamegraph.pl, inferno or speedscope)"
