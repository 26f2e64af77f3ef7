/* Suppressions (--suppress FILE) and the leak floor (--min-leak): findings a user has declared
 * known are dropped before rendering, and counted. FILE is a JSON list of rules
 * {"kind": KIND, "function": GLOB, "module": GLOB}, every field optional; a finding is dropped when
 * one rule's kind matches it and one frame of its stack matches all of the rule's globs. */
#ifndef VSP_SUPPRESS_H
#define VSP_SUPPRESS_H

#include "analyze.h"
#include "symbolize.h"

struct vsp_rules;

/* NULL on error, with one line in err naming the file and the problem. */
struct vsp_rules *vsp_rules_load(const char *path, char *err, size_t errlen);
void vsp_rules_free(struct vsp_rules *r);

/* Drop suppressed findings (rules may be NULL) and leaks smaller than min_leak bytes; adds to
 * a->suppressed. */
void vsp_apply_suppressions(struct vsp_analysis *a, const struct vsp_rules *rules, uint64_t min_leak,
                            struct vsp_symbolizer *sym);

#endif
