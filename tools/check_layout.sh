#!/bin/sh
# The rooms' include rules (shim/README.md, report/README.md, docs/ARCHITECTURE.md): a file
# includes its own room's headers, the rooms below it, nothing above. Run by `make test`; prints
# each include that breaks a rule and exits 1, or exits 0 silently. Run from the repository root.
# Rooms from the bottom up; a room may include any room before it on its own line.
set -u
rank() {
    case "$1" in
    shim/common/*) echo 1 ;; shim/base/*) echo 2 ;; shim/walk/*) echo 3 ;;
    shim/inproc/*) echo 4 ;; shim/record/*) echo 5 ;; shim/hooks/*) echo 6 ;;
    report/read/*) echo 11 ;; report/analyze/*) echo 12 ;; report/out/*) echo 13 ;;
    report/*) echo 14 ;; *) echo 0 ;;
    esac
}
bad=0
for f in shim/*/*.[ch] report/*/*.[ch] report/*.c; do
    [ -f "$f" ] || continue
    r=$(rank "$f")
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        case "$inc" in
        vramspy/*) continue ;;                       # include/vramspy: below everything
        shim/*|report/*) ;;
        *) echo "$f: #include \"$inc\": name the room (\"shim/base/ring.h\")"; bad=1; continue ;;
        esac
        [ -f "$inc" ] || { echo "$f: #include \"$inc\": no such file"; bad=1; continue; }
        i=$(rank "$inc")
        if [ "$r" -lt 10 ] && [ "$i" -ge 10 ]; then
            echo "$f: #include \"$inc\": the shim never includes the report"; bad=1
        elif [ "$r" -ge 10 ] && [ "$i" -lt 10 ] && [ "$i" -ne 1 ]; then
            echo "$f: #include \"$inc\": the report includes shim/common only"; bad=1
        elif [ "$i" -gt "$r" ]; then
            echo "$f: #include \"$inc\": a room above this one"; bad=1
        fi
    done
done
exit $bad
