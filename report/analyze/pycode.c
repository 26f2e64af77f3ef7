/* Python code objects of a trace (PYCODE records, format version 4): the qualified name and file
 * that a stack's Python frames (VSP_PYFRAME words) show. Ids come from the shim's counter, so
 * records arrive almost always in ascending id order: kept sorted by insertion, looked up by
 * binary search. A record that does not hold what its lengths say is ignored (its frames then
 * show as unknown Python code), never read past. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/analyze/analyze.h"

int vsp_pycode_add(struct vsp_analysis *a, const void *payload, uint32_t len)
{
    const struct vsp_rec_pycode *r = payload;
    if (len < sizeof *r || !r->id || !r->name_len || !r->file_len ||
        (uint64_t)r->name_len + r->file_len > len - sizeof *r)
        return 0;
    size_t at = a->npycodes;
    while (at > 0 && a->pycodes[at - 1].id >= r->id) {
        if (a->pycodes[at - 1].id == r->id)
            return 0; /* named twice: keep the first */
        at--;
    }
    if (a->npycodes == a->cappycodes) {
        size_t cap = a->cappycodes ? a->cappycodes * 2 : 64;
        struct vsp_pycode *p = realloc(a->pycodes, cap * sizeof *p);
        if (!p)
            return -1;
        a->pycodes = p;
        a->cappycodes = cap;
    }
    const char *name = (const char *)(r + 1);
    struct vsp_pycode c = {r->id, r->firstline, strndup(name, r->name_len - 1),
                           strndup(name + r->name_len, r->file_len - 1)};
    if (!c.name || !c.file) {
        free(c.name);
        free(c.file);
        return -1;
    }
    memmove(a->pycodes + at + 1, a->pycodes + at, (a->npycodes - at) * sizeof *a->pycodes);
    a->pycodes[at] = c;
    a->npycodes++;
    return 0;
}

const struct vsp_pycode *vsp_pycode_find(const struct vsp_analysis *a, uint32_t id)
{
    size_t lo = 0, hi = a->npycodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->pycodes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->npycodes && a->pycodes[lo].id == id ? &a->pycodes[lo] : NULL;
}

void vsp_pycodes_free(struct vsp_analysis *a)
{
    for (size_t i = 0; i < a->npycodes; i++) {
        free(a->pycodes[i].name);
        free(a->pycodes[i].file);
    }
    free(a->pycodes);
    a->pycodes = NULL;
    a->npycodes = a->cappycodes = 0;
}

int vsp_python_site(const struct vsp_analysis *a, uint32_t stack_id, char *buf, size_t len)
{
    if (len)
        buf[0] = 0;
    const struct vsp_stack *st = stack_id ? vsp_analysis_stack(a, stack_id) : NULL;
    for (uint32_t k = 0; st && k < st->nframes; k++) {
        if (!VSP_PYFRAME_IS(st->frames[k]))
            continue;
        const struct vsp_pycode *c = vsp_pycode_find(a, VSP_PYFRAME_CODE(st->frames[k]));
        const char *base = c ? strrchr(c->file, '/') : NULL;
        snprintf(buf, len, "%s (%s:%u)", c ? c->name : "<unknown Python code>",
                 c ? (base ? base + 1 : c->file) : "", VSP_PYFRAME_LINE(st->frames[k]));
        return 1;
    }
    return 0;
}
