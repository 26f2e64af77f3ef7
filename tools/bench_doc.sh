#!/usr/bin/env bash
# Put make bench's output (file $1) into docs/PERFORMANCE.md ($2) between the markers
# "<!-- make bench: begin -->" and "<!-- make bench: end -->", with the date: the figures there are
# always the last measured ones, never typed by hand. The result is written to $3 (default: $2
# itself); make bench writes a copy unless asked (BENCH_DOC=1), so that a tracked file changes only
# when someone means it to.
set -euo pipefail
out=$1 doc=$2 dest=${3:-$2}
[ -f "$doc" ] && grep -q '<!-- make bench: begin -->' "$doc" || { echo "bench_doc: no markers in $doc" >&2; exit 1; }
tmp=$(mktemp)
awk -v out="$out" -v date="$(date -u +%Y-%m-%d)" '
    /<!-- make bench: begin -->/ { print; print "Measured " date " by `make bench`:"; print ""; print "```";
                                   while ((getline line < out) > 0) print line; print "```"; skip = 1; next }
    /<!-- make bench: end -->/ { skip = 0 }
    !skip { print }' "$doc" > "$tmp"
mv "$tmp" "$dest"
