/* Purpose rules: a small JSON reader for exactly this shape (see purposes.h) and the matcher.
 * Shared by the shim (no jansson in the host process) and the report. */
#include "shim/common/purposes.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

struct cur {
    const char *s, *start;
    char *err;
    size_t errlen;
};

static void ws(struct cur *c)
{
    while (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r')
        c->s++;
}

static int fail(struct cur *c, const char *what)
{
    snprintf(c->err, c->errlen, "%s at byte %ld", what, (long)(c->s - c->start));
    return -1;
}

static int str(struct cur *c, char *out, size_t len)
{
    ws(c);
    if (*c->s != '"')
        return fail(c, "expected a string");
    c->s++;
    size_t n = 0;
    while (*c->s && *c->s != '"') {
        unsigned char ch = (unsigned char)*c->s++;
        char utf8[4];
        size_t k = 1;
        utf8[0] = (char)ch;
        if (ch < 0x20)
            return fail(c, "control character in a string");
        if (ch == '\\') {
            ch = (unsigned char)*c->s++;
            switch (ch) {
            case '"': case '\\': case '/': utf8[0] = (char)ch; break;
            case 'b': utf8[0] = '\b'; break;
            case 'f': utf8[0] = '\f'; break;
            case 'n': utf8[0] = '\n'; break;
            case 'r': utf8[0] = '\r'; break;
            case 't': utf8[0] = '\t'; break;
            case 'u': {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *c->s++;
                    int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (v < 0)
                        return fail(c, "bad \\u escape in a string");
                    cp = cp * 16 + (unsigned)v;
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    return fail(c, "surrogate \\u escapes are not supported in globs");
                if (cp < 0x80) {
                    utf8[0] = (char)cp;
                } else if (cp < 0x800) {
                    utf8[0] = (char)(0xc0 | (cp >> 6));
                    utf8[1] = (char)(0x80 | (cp & 0x3f));
                    k = 2;
                } else {
                    utf8[0] = (char)(0xe0 | (cp >> 12));
                    utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    utf8[2] = (char)(0x80 | (cp & 0x3f));
                    k = 3;
                }
                if (cp == 0)
                    return fail(c, "\\u0000 in a string");
                break;
            }
            default:
                return fail(c, "invalid escape in a string");
            }
        }
        if (n + k >= len)
            return fail(c, "string too long");
        memcpy(out + n, utf8, k);
        n += k;
    }
    if (*c->s != '"')
        return fail(c, "unterminated string");
    c->s++;
    out[n] = 0;
    return 0;
}

static int list(struct cur *c, char globs[][VSP_PURPOSE_LEN], int *n)
{
    ws(c);
    if (*c->s != '[')
        return fail(c, "expected a list of globs");
    c->s++;
    ws(c);
    if (*c->s == ']') {
        c->s++;
        return 0;
    }
    for (;;) {
        if (*n >= VSP_PURPOSE_GLOBS)
            return fail(c, "too many globs for one label (8 at most)");
        if (str(c, globs[*n], VSP_PURPOSE_LEN) < 0)
            return -1;
        (*n)++;
        ws(c);
        if (*c->s == ',') {
            c->s++;
            continue;
        }
        if (*c->s == ']') {
            c->s++;
            return 0;
        }
        return fail(c, "expected , or ] in a list");
    }
}

int vsp_purposes_parse(const char *text, struct vsp_purposes *out, char *err, size_t errlen)
{
    struct cur c = {text, text, err, errlen};
    memset(out, 0, sizeof *out);
    ws(&c);
    if (*c.s != '{')
        return fail(&c, "a purposes file is a JSON object from label to globs");
    c.s++;
    ws(&c);
    if (*c.s == '}')
        return 0;
    for (;;) {
        if (out->n >= VSP_PURPOSE_MAX)
            return fail(&c, "too many labels (32 at most)");
        struct vsp_purpose *p = &out->p[out->n];
        if (str(&c, p->label, sizeof p->label) < 0)
            return -1;
        ws(&c);
        if (*c.s != ':')
            return fail(&c, "expected :");
        c.s++;
        ws(&c);
        if (*c.s == '[') {
            if (list(&c, p->any, &p->nany) < 0)
                return -1;
        } else if (*c.s == '{') {
            c.s++;
            ws(&c);
            if (*c.s == '}') {
                c.s++;
            } else {
                for (;;) {
                    char key[16];
                    if (str(&c, key, sizeof key) < 0)
                        return -1;
                    ws(&c);
                    if (*c.s != ':')
                        return fail(&c, "expected :");
                    c.s++;
                    if (!strcmp(key, "function")) {
                        if (list(&c, p->function, &p->nfunction) < 0)
                            return -1;
                    } else if (!strcmp(key, "module")) {
                        if (list(&c, p->module, &p->nmodule) < 0)
                            return -1;
                    } else if (!strcmp(key, "file")) {
                        if (list(&c, p->file, &p->nfile) < 0)
                            return -1;
                    } else {
                        return fail(&c, "expected \"function\", \"module\" or \"file\"");
                    }
                    ws(&c);
                    if (*c.s == ',') {
                        c.s++;
                        continue;
                    }
                    if (*c.s == '}') {
                        c.s++;
                        break;
                    }
                    return fail(&c, "expected , or } in a label's object");
                }
            }
        } else {
            return fail(&c, "a label maps to a list of globs or to {\"function\": [...], \"module\": [...]}");
        }
        out->n++;
        ws(&c);
        if (*c.s == ',') {
            c.s++;
            continue;
        }
        if (*c.s == '}') {
            c.s++;
            ws(&c);
            if (*c.s)
                return fail(&c, "trailing characters after the object");
            return 0;
        }
        return fail(&c, "expected , or } after a label");
    }
}

static int module_match(const char *glob, const char *module)
{
    const char *base = strrchr(module, '/');
    return fnmatch(glob, module, 0) == 0 || (base && fnmatch(glob, base + 1, 0) == 0);
}

int vsp_purposes_match(const struct vsp_purposes *ps, const char *function, const char *module)
{
    return vsp_purposes_match_frame(ps, function, module, NULL);
}

int vsp_purposes_match_frame(const struct vsp_purposes *ps, const char *function, const char *module,
                             const char *file)
{
    const char *f = function ? function : "", *m = module ? module : "", *fl = file ? file : "";
    for (int i = 0; i < ps->n; i++) {
        const struct vsp_purpose *p = &ps->p[i];
        for (int k = 0; k < p->nfunction; k++)
            if (*f && fnmatch(p->function[k], f, 0) == 0)
                return i;
        for (int k = 0; k < p->nmodule; k++)
            if (*m && module_match(p->module[k], m))
                return i;
        for (int k = 0; k < p->nfile; k++)
            if (*fl && module_match(p->file[k], fl))
                return i;
        for (int k = 0; k < p->nany; k++)
            if ((*f && fnmatch(p->any[k], f, 0) == 0) || (*m && module_match(p->any[k], m)) ||
                (*fl && module_match(p->any[k], fl)))
                return i;
    }
    return -1;
}

int vsp_glob_frame_matches(const char *function_glob, const char *module_glob, const char *file_glob,
                           const char *function, const char *module, const char *file)
{
    if (function_glob && *function_glob && fnmatch(function_glob, function ? function : "", 0) != 0)
        return 0;
    if (module_glob && *module_glob && !module_match(module_glob, module ? module : ""))
        return 0;
    if (file_glob && *file_glob && !module_match(file_glob, file ? file : ""))
        return 0;
    return 1;
}
