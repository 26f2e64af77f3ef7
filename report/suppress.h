/* Suppressions (--suppress FILE) and the leak floor (--min-leak): findings a user has declared
 * known are dropped before rendering, and counted. FILE is a JSON list of rules
 * {"kind": KIND, "function": GLOB, "module": GLOB}, every field optional; a finding is dropped when
 * one rule's kind matches it and one frame of its stack matches all of the rule's globs. */
#ifndef VSP_SUPPRESS_H
#define VSP_SUPPRESS_H

#include <jansson.h>

#include "analyze.h"
#include "symbolize.h"

struct vsp_rules;

/* A JSON file, parsed; NULL with one line in err naming the file and the problem (its line and
 * column when jansson knows them). */
json_t *vsp_json_load_file(const char *path, char *err, size_t errlen);

/* Does frame f match every glob given (NULL: any)? function against the demangled name, module
 * against the module's path and its base name, file against the source file and its base name. */
int vsp_frame_glob_match(const char *function, const char *module, const char *file, const struct vsp_frame_info *f);

/* NULL on error, with one line in err naming the file and the problem. */
struct vsp_rules *vsp_rules_load(const char *path, char *err, size_t errlen);
void vsp_rules_free(struct vsp_rules *r);

/* Drop suppressed findings (rules may be NULL) and leaks smaller than min_leak bytes; adds to
 * a->suppressed. */
void vsp_apply_suppressions(struct vsp_analysis *a, const struct vsp_rules *rules, uint64_t min_leak,
                            struct vsp_symbolizer *sym);

#endif
