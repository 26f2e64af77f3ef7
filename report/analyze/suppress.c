/* Suppression rules (see suppress.h), parsed with jansson, matched frame by frame with
 * vsp_frame_matches (native and Python frames). */
#include "report/analyze/suppress.h"

#include "shim/common/purposes.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/read/input.h"

struct rule {
    int kind; /* -1: any */
    char *function, *module, *file;
};

struct vsp_rules {
    struct rule *r;
    size_t n;
};

json_t *vsp_json_load_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = vsp_input_open(path);
    if (!fp) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadf(fp, 0, &je);
    fclose(fp);
    if (!j) {
        /* jansson gives -1 positions when it has none (an empty file, a read error) */
        if (je.line > 0)
            snprintf(err, errlen, "%s: %s (line %d, column %d)", path, je.text, je.line, je.column);
        else
            snprintf(err, errlen, "%s: %s", path, je.text);
    }
    return j;
}

struct vsp_rules *vsp_rules_load(const char *path, char *err, size_t errlen)
{
    json_t *j = vsp_json_load_file(path, err, errlen);
    if (!j)
        return NULL;
    if (!json_is_array(j)) {
        snprintf(err, errlen, "%s: a suppression file is a JSON list of rules", path);
        json_decref(j);
        return NULL;
    }
    struct vsp_rules *rs = calloc(1, sizeof *rs);
    rs->r = calloc(json_array_size(j) + 1, sizeof *rs->r);
    size_t i;
    json_t *o;
    json_array_foreach(j, i, o)
    {
        struct rule *ru = &rs->r[rs->n];
        ru->kind = -1;
        const char *key;
        json_t *v;
        if (!json_is_object(o)) {
            snprintf(err, errlen, "%s: rule %zu is not an object", path, i);
            goto bad;
        }
        json_object_foreach(o, key, v)
        {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "%s: rule %zu: \"%s\" must be a string", path, i, key);
                goto bad;
            }
            const char *sv = json_string_value(v);
            if (!strcmp(key, "kind")) {
                for (int k = 0; k < VSP_F_COUNT_; k++)
                    if (!strcmp(sv, vsp_finding_json_name(k)) || !strcmp(sv, vsp_finding_cli_name(k)))
                        ru->kind = k;
                if (ru->kind < 0) {
                    snprintf(err, errlen, "%s: rule %zu: unknown kind \"%s\"", path, i, sv);
                    goto bad;
                }
            } else if (!strcmp(key, "function")) {
                ru->function = strdup(sv);
            } else if (!strcmp(key, "module")) {
                ru->module = strdup(sv);
            } else if (!strcmp(key, "file")) {
                ru->file = strdup(sv);
            } else {
                snprintf(err, errlen, "%s: rule %zu: unknown field \"%s\" (kind, function, module, file)", path, i,
                         key);
                goto bad;
            }
        }
        rs->n++;
    }
    json_decref(j);
    return rs;
bad:
    json_decref(j);
    rs->n++; /* free the partial rule too */
    vsp_rules_free(rs);
    return NULL;
}

void vsp_rules_free(struct vsp_rules *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->r[i].function);
        free(rs->r[i].module);
        free(rs->r[i].file);
    }
    free(rs->r);
    free(rs);
}

int vsp_frame_matches(const struct vsp_frame_info *f, const char *function_glob, const char *module_glob,
                      const char *file_glob)
{
    return vsp_glob_frame_matches(function_glob, module_glob, file_glob, f->function, f->module,
                                  f->python && f->path ? f->path : f->file);
}

static int suppressed(const struct vsp_finding *f, const struct vsp_rules *rs, const struct vsp_analysis *a,
                      struct vsp_symbolizer *sym)
{
    const struct vsp_stack *st = vsp_analysis_stack(a, f->stack_id);
    for (size_t i = 0; rs && i < rs->n; i++) {
        const struct rule *ru = &rs->r[i];
        if (ru->kind >= 0 && ru->kind != f->kind)
            continue;
        if (!ru->function && !ru->module && !ru->file)
            return 1;
        for (unsigned k = 0; st && k < st->nframes; k++) {
            struct vsp_frame_info fi[16];
            int n = vsp_sym_frame(sym, st, k, fi, 16);
            for (int j = 0; j < n; j++)
                if (vsp_frame_matches(&fi[j], ru->function, ru->module, ru->file))
                    return 1;
        }
    }
    return 0;
}

void vsp_apply_suppressions(struct vsp_analysis *a, const struct vsp_rules *rules, uint64_t min_leak,
                            struct vsp_symbolizer *sym)
{
    size_t out = 0;
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_finding *f = &a->findings[i];
        if ((f->kind == VSP_F_LEAK && f->bytes < min_leak) || suppressed(f, rules, a, sym)) {
            a->suppressed++;
            continue;
        }
        a->findings[out++] = *f;
    }
    a->nfindings = out;
}
