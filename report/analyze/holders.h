/* Holder rules: memory a framework keeps on purpose until the process exits (PyTorch's caching
 * allocators, cuBLAS/cuDNN handles, CuPy's pools, XLA...) is "held", not leaked. A rules file is a
 * JSON list of {"held_by": NAME, "function": GLOB, "module": GLOB, "file": GLOB, "source": TEXT}:
 * held_by is required, at least one of function/module/file, globs matched as suppressions match
 * (fnmatch(3); module against the path and its base name), source says where the names come from.
 * The shipped list (report/holders.json) is built into the report and loaded by default; a
 * holders.json installed where vsp_holders_default_path finds it (share/vramspy/holders.json, or
 * beside the binary) replaces the built-in copy, so a packager can ship other rules. --holders FILE
 * adds rules, tried first; --no-default-holders drops the shipped ones. */
#ifndef VSP_HOLDERS_H
#define VSP_HOLDERS_H

#include <stddef.h>

#include "report/analyze/analyze.h"
#include "report/analyze/symbolize.h"

struct vsp_holders;

/* Add the rules of path to *hs (created when NULL). 0, or -1 with one line in err naming the file,
 * the rule and the field. */
int vsp_holders_load(struct vsp_holders **hs, const char *path, char *err, size_t errlen);
/* The shipped rules file for a report binary at exe_path: <dir>/../share/vramspy/holders.json, else
 * <dir>/holders.json (the build tree). 0 and the path in out (readable or not), -1 when neither
 * exists. */
int vsp_holders_default_path(const char *exe_path, char *out, size_t outlen);
/* Add the rules built into the binary (report/holders.json at build time) to *hs, as
 * vsp_holders_load does; the name in err is "holders.json (built in)". */
int vsp_holders_load_builtin(struct vsp_holders **hs, char *err, size_t errlen);
/* report/holders.json at build time and its length (without the NUL after it): the file the
 * Makefile generates from it (holders_builtin.c under the build tree) defines them. */
extern const char vsp_holders_builtin[];
extern const size_t vsp_holders_builtin_len;
size_t vsp_holders_count(const struct vsp_holders *hs);
void vsp_holders_free(struct vsp_holders *hs);

/* In a complete trace (finished, not crashed, not in progress), turn each leak whose allocation
 * stack matches a rule into a "cached" finding held by that rule's holder, grouped by holder,
 * memory kind and stack; re-sorts the findings. An incomplete trace keeps its leaks. */
void vsp_apply_holders(struct vsp_analysis *a, const struct vsp_holders *hs, struct vsp_symbolizer *sym);

#endif
