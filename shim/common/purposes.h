/* Purpose rules (VRAMSPY_PURPOSES for the shim, --purposes for the report): a JSON object from
 * label to globs,
 *   {"weights": ["load_weights*", "*safetensors*"],
 *    "kv_cache": {"function": ["*kv_cache*"], "module": ["libattention.so*"]}}
 * A plain list matches a frame's function name or its module (full path or base name); the object
 * form separates the two, and its "file" globs match a Python frame's file (full path or base
 * name; a plain list matches it too). An allocation gets the label of the first rule (in file order) that
 * matches its innermost matching frame. Fixed-size and malloc-free, so the shim can use it. */
#ifndef VSP_PURPOSES_H
#define VSP_PURPOSES_H

#include <stddef.h>

#define VSP_PURPOSE_MAX 32
#define VSP_PURPOSE_GLOBS 8
#define VSP_PURPOSE_LEN 96

struct vsp_purpose {
    char label[64];
    char function[VSP_PURPOSE_GLOBS][VSP_PURPOSE_LEN];
    char module[VSP_PURPOSE_GLOBS][VSP_PURPOSE_LEN];
    char any[VSP_PURPOSE_GLOBS][VSP_PURPOSE_LEN];
    char file[VSP_PURPOSE_GLOBS][VSP_PURPOSE_LEN];
    int nfunction, nmodule, nany, nfile;
};

struct vsp_purposes {
    struct vsp_purpose p[VSP_PURPOSE_MAX];
    int n;
};

/* Parse text; 0, or -1 with one line in err (with the byte offset). */
int vsp_purposes_parse(const char *text, struct vsp_purposes *out, char *err, size_t errlen);

/* Index of the rule matching this frame, or -1. function/module may be "" or NULL. */
int vsp_purposes_match(const struct vsp_purposes *ps, const char *function, const char *module);
/* The same for a frame that may have a file (a Python frame: function is its qualified name,
 * module NULL, file its co_filename). */
int vsp_purposes_match_frame(const struct vsp_purposes *ps, const char *function, const char *module,
                             const char *file);

/* One frame against one rule's globs (NULL or "" glob: any): function glob against the function,
 * module glob against the module's path or base name, file glob against the file's path or base
 * name; a missing name is matched as "" (so "*" matches it). The
 * matcher of suppressions, purposes and holder rules (report/analyze/suppress.c vsp_frame_matches). */
int vsp_glob_frame_matches(const char *function_glob, const char *module_glob, const char *file_glob,
                           const char *function, const char *module, const char *file);

#endif
