/* Where a stack's Python frames go among its native ones (memray's approach), shared by the
 * report (report/analyze/symbolize.c) and the shim's purpose rules (shim/inproc/labels.c): each eval-loop frame
 * of the native part (innermost first) stands for the Python frames it ran, innermost first, up
 * to and including the first one marked "entry" (VSP_PYFRAME_ENTRY: the outermost Python frame of
 * one C call of the eval loop); Python frames left over when the native frames end (the native
 * part was cut at the depth limit, or its eval frames have no names) follow the native frames. */
#ifndef VSP_PYMERGE_H
#define VSP_PYMERGE_H

#include <string.h>

#include "vramspy/trace_format.h"

/* The interpreter's eval loop, 3.9 to 3.13 (a compiler's clone suffix allowed: .cold, .lto_priv). */
static inline int vsp_is_eval_frame(const char *function)
{
    static const char name[] = "_PyEval_EvalFrameDefault";
    return function && strncmp(function, name, sizeof name - 1) == 0 &&
           (function[sizeof name - 1] == 0 || function[sizeof name - 1] == '.');
}

struct vsp_pymerge {
    const uint64_t *py; /* the Python frames, innermost first */
    unsigned m, next;
};

/* The Python frames the next eval-loop frame ran: py[*first .. *first + returned). */
static inline unsigned vsp_pymerge_take(struct vsp_pymerge *s, unsigned *first)
{
    *first = s->next;
    while (s->next < s->m)
        if (VSP_PYFRAME_IS_ENTRY(s->py[s->next++]))
            break;
    return s->next - *first;
}

/* Split a recorded frame array into its native part and its Python part (version 4 STACK). */
static inline unsigned vsp_native_frames(const uint64_t *frames, unsigned n)
{
    unsigned k = 0;
    while (k < n && !VSP_PYFRAME_IS(frames[k]))
        k++;
    return k;
}

#endif
