/* Holder rules (see holders.h): parsed with jansson, matched with the suppressions' globs. The
 * shipped list comes from an installed file when there is one, else from the copy built in. */
#include "report/analyze/holders.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/analyze/suppress.h"

struct holder_rule {
    char *held_by, *function, *module, *file;
};

struct vsp_holders {
    struct holder_rule *r;
    size_t n, cap;
};

static void rule_free(struct holder_rule *ru)
{
    free(ru->held_by);
    free(ru->function);
    free(ru->module);
    free(ru->file);
}

/* Add the rules of the parsed list j to *hsp; path names it in err. Leaves j to the caller. */
static int holders_add(struct vsp_holders **hsp, json_t *j, const char *path, char *err, size_t errlen)
{
    if (!json_is_array(j)) {
        snprintf(err, errlen, "%s: a holder rules file is a JSON list of {held_by, function, module, source} "
                 "rules", path);
        return -1;
    }
    struct vsp_holders *hs = *hsp ? *hsp : calloc(1, sizeof *hs);
    if (!hs) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    *hsp = hs;
    size_t i;
    json_t *o;
    json_array_foreach(j, i, o)
    {
        if (!json_is_object(o)) {
            snprintf(err, errlen, "%s: rule %zu is not an object", path, i);
            return -1;
        }
        struct holder_rule ru = {0};
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v)
        {
            char **field = !strcmp(key, "held_by")    ? &ru.held_by
                           : !strcmp(key, "function") ? &ru.function
                           : !strcmp(key, "module")   ? &ru.module
                           : !strcmp(key, "file")     ? &ru.file
                                                      : NULL;
            if (!field && strcmp(key, "source") != 0) {
                snprintf(err, errlen, "%s: rule %zu: unknown field \"%s\" (held_by, function, module, file, "
                         "source)", path, i, key);
                rule_free(&ru);
                return -1;
            }
            if (!json_is_string(v) || !*json_string_value(v)) {
                snprintf(err, errlen, "%s: rule %zu: \"%s\" must be a non-empty string", path, i, key);
                rule_free(&ru);
                return -1;
            }
            if (field && !(*field = strdup(json_string_value(v)))) {
                snprintf(err, errlen, "%s: out of memory", path);
                rule_free(&ru);
                return -1;
            }
        }
        if (!ru.held_by || !(ru.function || ru.module || ru.file)) {
            snprintf(err, errlen, "%s: rule %zu: %s", path, i,
                     !ru.held_by ? "\"held_by\" is missing (who holds the memory)"
                                 : "needs \"function\", \"module\" or \"file\" (a rule without one would hold "
                                   "every leak)");
            rule_free(&ru);
            return -1;
        }
        if (hs->n == hs->cap) {
            size_t nc = hs->cap ? hs->cap * 2 : 32;
            struct holder_rule *g = realloc(hs->r, nc * sizeof *g);
            if (!g) {
                snprintf(err, errlen, "%s: out of memory", path);
                rule_free(&ru);
                return -1;
            }
            hs->r = g;
            hs->cap = nc;
        }
        hs->r[hs->n++] = ru;
    }
    return 0;
}

int vsp_holders_load(struct vsp_holders **hsp, const char *path, char *err, size_t errlen)
{
    json_t *j = vsp_json_load_file(path, err, errlen);
    if (!j)
        return -1;
    int rc = holders_add(hsp, j, path, err, errlen);
    json_decref(j);
    return rc;
}

int vsp_holders_load_builtin(struct vsp_holders **hsp, char *err, size_t errlen)
{
    static const char name[] = "holders.json (built in)";
    json_error_t je;
    json_t *j = json_loadb(vsp_holders_builtin, vsp_holders_builtin_len, 0, &je);
    if (!j) {
        /* report/holders.json did not parse at build time: test_holders checks the shipped file */
        snprintf(err, errlen, "%s: %s (line %d, column %d)", name, je.text, je.line, je.column);
        return -1;
    }
    int rc = holders_add(hsp, j, name, err, errlen);
    json_decref(j);
    return rc;
}

int vsp_holders_default_path(const char *exe_path, char *out, size_t outlen)
{
    char exe[PATH_MAX];
    if (!realpath(exe_path, exe)) {
        ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (l <= 0)
            return -1;
        exe[l] = 0;
    }
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    /* F_OK, not R_OK: a file that is there but unreadable is an error when loaded, never a quiet
     * fall back to the built-in rules */
    static const char *const rel[] = {"/../share/vramspy/holders.json", "/holders.json"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        if ((size_t)snprintf(out, outlen, "%s%s", exe, rel[i]) < outlen && access(out, F_OK) == 0)
            return 0;
    }
    return -1;
}

size_t vsp_holders_count(const struct vsp_holders *hs)
{
    return hs ? hs->n : 0;
}

void vsp_holders_free(struct vsp_holders *hs)
{
    if (!hs)
        return;
    for (size_t i = 0; i < hs->n; i++)
        rule_free(&hs->r[i]);
    free(hs->r);
    free(hs);
}

/* The first rule (in file order) one of whose frames of the stack matches; NULL when none. */
static const char *holder_of(const struct vsp_holders *hs, const struct vsp_analysis *a, uint32_t stack_id,
                             struct vsp_symbolizer *sym)
{
    const struct vsp_stack *st = vsp_analysis_stack(a, stack_id);
    if (!st)
        return NULL;
    enum { MAX_INLINE = 16 };
    struct vsp_frame_info fi[MAX_INLINE];
    const char *best = NULL;
    size_t best_rule = hs->n;
    for (unsigned k = 0; k < st->nframes && best_rule > 0; k++) {
        int n = vsp_sym_frame(sym, st, k, fi, MAX_INLINE);
        for (int j = 0; j < n; j++)
            for (size_t r = 0; r < best_rule; r++)
                if (vsp_frame_matches(&fi[j], hs->r[r].function, hs->r[r].module, hs->r[r].file)) {
                    best_rule = r;
                    best = hs->r[r].held_by;
                    break;
                }
    }
    return best;
}

void vsp_apply_holders(struct vsp_analysis *a, const struct vsp_holders *hs, struct vsp_symbolizer *sym)
{
    if (!hs || !hs->n || !a->complete || a->in_progress || a->signal)
        return;
    for (size_t i = 0; i < a->nfindings; i++)
        if (a->findings[i].kind == VSP_F_CRASH)
            return; /* crashed: what is live may be what the crash left, keep today's meaning */
    /* A leak finding is one (API, memory kind, stack), and a stack has one holder: converting each
     * in place groups held memory by holder, memory kind and stack, with nothing to merge. */
    for (size_t i = 0; i < a->nfindings; i++) {
        struct vsp_finding *f = &a->findings[i];
        const char *by = f->kind == VSP_F_LEAK && !f->uncertain ? holder_of(hs, a, f->stack_id, sym) : NULL;
        if (by) {
            f->kind = VSP_F_CACHED;
            f->held_by = by;
        }
    }
    vsp_sort_findings(a);
}
