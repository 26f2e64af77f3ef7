/* Suppressions (--suppress FILE) and the leak floor (--min-leak): findings a user has declared
 * known are dropped before rendering, and counted. FILE is a JSON list of rules
 * {"kind": KIND, "function": GLOB, "module": GLOB, "file": GLOB}, every field optional; a finding is
 * dropped when one rule's kind matches it and one frame of its stack matches all of the rule's
 * globs. A Python frame (issue 21) has its qualified name as function, no module, and its
 * co_filename as file (matched as a path or a base name). */
#ifndef VSP_SUPPRESS_H
#define VSP_SUPPRESS_H

#include <jansson.h>

#include "report/analyze/analyze.h"
#include "report/analyze/symbolize.h"

struct vsp_rules;

/* A JSON file, parsed; NULL with one line in err naming the file and the problem (its line and
 * column when jansson knows them). */
json_t *vsp_json_load_file(const char *path, char *err, size_t errlen);

/* NULL on error, with one line in err naming the file and the problem. */
struct vsp_rules *vsp_rules_load(const char *path, char *err, size_t errlen);
void vsp_rules_free(struct vsp_rules *r);

/* One symbolised frame (native or Python) against a rule's globs (NULL or "": any), the matcher of
 * suppressions, purposes and holder rules: function glob on the function name (a Python frame's
 * qualified name), module glob on the module's path or base name, file glob on the source file
 * (a Python frame's co_filename, as a path or a base name). */
int vsp_frame_matches(const struct vsp_frame_info *f, const char *function_glob, const char *module_glob,
                      const char *file_glob);

/* Drop suppressed findings (rules may be NULL) and leaks smaller than min_leak bytes; adds to
 * a->suppressed. */
void vsp_apply_suppressions(struct vsp_analysis *a, const struct vsp_rules *rules, uint64_t min_leak,
                            struct vsp_symbolizer *sym);

#endif
