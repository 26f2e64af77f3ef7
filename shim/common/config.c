/* VRAMSPY_* environment parsing and output path patterns (see config.h). Runs once, at init;
 * may use snprintf, never malloc. */
#include "shim/common/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vsp_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s++ - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    uint64_t mult = 1;
    if (*s) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
            {"K", 1ull << 10}, {"KiB", 1ull << 10}, {"k", 1ull << 10}, {"KB", 1000ull},
            {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"MB", 1000000ull},
            {"G", 1ull << 30}, {"GiB", 1ull << 30}, {"GB", 1000000000ull},
            {"T", 1ull << 40}, {"TiB", 1ull << 40}, {"TB", 1000000000000ull},
            {"B", 1},
        };
        mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(s, units[i].suffix) == 0)
                mult = units[i].mult;
        if (!mult)
            return -EINVAL;
    }
    if (v && mult > UINT64_MAX / v)
        return -ERANGE;
    *out = v * mult;
    return 0;
}

int vsp_expand_pattern(const char *pattern, long pid, const char *exe, char *out, size_t outlen)
{
    size_t n = 0;
    char num[24];
    for (const char *p = pattern; *p; p++) {
        const char *ins = NULL;
        char one[2] = {*p, 0};
        if (*p == '%') {
            p++;
            if (*p == 'p') {
                snprintf(num, sizeof num, "%ld", pid);
                ins = num;
            } else if (*p == 'e') {
                ins = exe && *exe ? exe : "unknown";
            } else if (*p == '%') {
                ins = "%";
            } else {
                return -EINVAL;
            }
        } else {
            ins = one;
        }
        size_t l = strlen(ins);
        if (n + l + 1 > outlen)
            return -ENAMETOOLONG;
        memcpy(out + n, ins, l);
        n += l;
    }
    if (n == 0 || n + 1 > outlen)
        return n == 0 ? -EINVAL : -ENAMETOOLONG;
    out[n] = 0;
    return 0;
}

/* The user's value for a message: over-long ones are shortened so that a warning stays one line. */
static void shorten(const char *val, char *out, size_t len)
{
    size_t vlen = strlen(val);
    if (vlen > 120)
        snprintf(out, len, "%.100s... (%zu characters)", val, vlen);
    else
        snprintf(out, len, "%s", val);
}

/* One warning line: "NAME=VALUE what\n". The value is an argument, never part of a format. */
static void addwarn(char *warn, size_t warnlen, int *nbad, const char *name, const char *val,
                    const char *what)
{
    char shown[160];
    size_t used = strlen(warn);
    shorten(val, shown, sizeof shown);
    if (used + 1 < warnlen)
        snprintf(warn + used, warnlen - used, "%s=%s %s\n", name, shown, what);
    (*nbad)++;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !*v)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

static int parse_fresh(struct vsp_config *c, vsp_getenv_fn get, char *warn, size_t warnlen);

static int load(struct vsp_config *c, vsp_getenv_fn get, int at_secure, char *warn, size_t warnlen, int fresh)
{
    if (!fresh)
        memset(c, 0, sizeof *c);
    int r = parse_fresh(c, at_secure ? NULL : get, warn, warnlen);
    if (!fresh && !c->out_pattern[0])
        strcpy(c->out_pattern, VSP_DEFAULT_OUT);
    if (at_secure) {
        /* setuid, setgid or file capabilities: the environment belongs to a less privileged
         * caller. Read none of it, create nothing: every call passes straight through. */
        c->disabled = 1;
        c->secure = 1;
        return 0;
    }
    return r;
}

int vsp_config_load(struct vsp_config *c, vsp_getenv_fn get, int at_secure, char *warn, size_t warnlen)
{
    return load(c, get, at_secure, warn, warnlen, 0);
}

int vsp_config_load_fresh(struct vsp_config *c, vsp_getenv_fn get, int at_secure, char *warn, size_t warnlen)
{
    return load(c, get, at_secure, warn, warnlen, 1);
}

int vsp_config_parse(struct vsp_config *c, vsp_getenv_fn get, char *warn, size_t warnlen)
{
    return load(c, get, 0, warn, warnlen, 0);
}

static int parse_fresh(struct vsp_config *c, vsp_getenv_fn get, char *warn, size_t warnlen)
{
    int nbad = 0;
    const char *v;
    if (warnlen)
        warn[0] = 0;
    c->depth = VSP_DEFAULT_DEPTH;
    c->ring_size = VSP_DEFAULT_RING;
    c->on_full = VSP_ON_FULL_WAIT;
    c->summary = 1;
    c->python = 1;
    c->metrics_interval_ms = 1000;
    if (!get)
        return 0;

    if ((v = get("VRAMSPY_OUT")) && *v) {
        char probe[VSP_PATH_MAX];
        if (strlen(v) >= sizeof c->out_pattern || vsp_expand_pattern(v, 1, "x", probe, sizeof probe) < 0)
        {
            /* warned by the trace writer, which knows the path it used instead */
            shorten(v, c->out_bad, sizeof c->out_bad);
            nbad++;
        } else
            strcpy(c->out_pattern, v);
    }
    if ((v = get("VRAMSPY_DEPTH")) && *v) {
        uint64_t d;
        if (vsp_parse_size(v, &d) < 0 || d > VSP_MAX_DEPTH || strspn(v, "0123456789") != strlen(v))
            addwarn(warn, warnlen, &nbad, "VRAMSPY_DEPTH", v, "is not a frame count from 0 to 256; using 64");
        else
            c->depth = (unsigned)d;
    }
    if ((v = get("VRAMSPY_QUIET")) && parse_bool(v, &c->quiet) < 0) {
        addwarn(warn, warnlen, &nbad, "VRAMSPY_QUIET", v, "is not 0 or 1; treating it as 1");
        c->quiet = 1;
    }
    if ((v = get("VRAMSPY_SUMMARY")) && parse_bool(v, &c->summary) < 0) {
        addwarn(warn, warnlen, &nbad, "VRAMSPY_SUMMARY", v, "is not 0 or 1; treating it as 1");
        c->summary = 1;
    }
    if ((v = get("VRAMSPY_DEBUG")) && parse_bool(v, &c->debug) < 0) {
        addwarn(warn, warnlen, &nbad, "VRAMSPY_DEBUG", v, "is not 0 or 1; treating it as 1");
        c->debug = 1;
    }
    if ((v = get("VRAMSPY_DISABLE")) && parse_bool(v, &c->disabled) < 0) {
        addwarn(warn, warnlen, &nbad, "VRAMSPY_DISABLE", v, "is not 0 or 1; tracing stays on");
        c->disabled = 0;
    }
    if ((v = get("VRAMSPY_PYTHON")) && parse_bool(v, &c->python) < 0) {
        addwarn(warn, warnlen, &nbad, "VRAMSPY_PYTHON", v, "is not 0 or 1; Python frames stay on");
        c->python = 1;
    }
    if ((v = get("VRAMSPY_RING_SIZE")) && *v) {
        uint64_t sz;
        if (vsp_parse_size(v, &sz) < 0 || sz < VSP_MIN_RING || sz > VSP_MAX_RING) {
            addwarn(warn, warnlen, &nbad, "VRAMSPY_RING_SIZE", v, "is not a size from 64K to 1G; using 4M");
        } else {
            uint64_t p = VSP_MIN_RING;
            while (p < sz)
                p <<= 1;
            c->ring_size = p;
        }
    }
    if ((v = get("VRAMSPY_PURPOSES")) && *v) {
        if (strlen(v) >= sizeof c->purposes_path)
            addwarn(warn, warnlen, &nbad, "VRAMSPY_PURPOSES", v, "is too long for a path; no purposes");
        else
            strcpy(c->purposes_path, v);
    }
    if ((v = get("VRAMSPY_METRICS")) && *v) {
        char probe[VSP_PATH_MAX];
        if (strlen(v) >= sizeof c->metrics_pattern || vsp_expand_pattern(v, 1, "x", probe, sizeof probe) < 0)
            addwarn(warn, warnlen, &nbad, "VRAMSPY_METRICS", v,
                    "is not a usable path pattern (%p, %e and %% are the only escapes); no metrics are written");
        else
            strcpy(c->metrics_pattern, v);
    }
    if ((v = get("VRAMSPY_METRICS_INTERVAL")) && *v) {
        uint64_t ms;
        if (vsp_parse_size(v, &ms) < 0 || strspn(v, "0123456789") != strlen(v) || ms < 10 || ms > 3600000)
            addwarn(warn, warnlen, &nbad, "VRAMSPY_METRICS_INTERVAL", v,
                    "is not a number of milliseconds from 10 to 3600000; using 1000");
        else
            c->metrics_interval_ms = (unsigned)ms;
    }
    if ((v = get("VRAMSPY_ENFORCE")) && *v) {
        if (!strcmp(v, "vram-only"))
            c->enforce_vram_only = 1;
        else if (strcmp(v, "none") != 0)
            addwarn(warn, warnlen, &nbad, "VRAMSPY_ENFORCE", v, "is not vram-only (or none); nothing is enforced");
    }
    if ((v = get("VRAMSPY_CLOCK")) && *v) {
        if (!strcmp(v, "coarse"))
            c->clock_coarse = 1;
        else if (strcmp(v, "precise") != 0)
            addwarn(warn, warnlen, &nbad, "VRAMSPY_CLOCK", v, "is neither precise nor coarse; using precise");
    }
    if ((v = get("VRAMSPY_ON_FULL")) && *v) {
        if (!strcmp(v, "wait"))
            c->on_full = VSP_ON_FULL_WAIT;
        else if (!strcmp(v, "drop"))
            c->on_full = VSP_ON_FULL_DROP;
        else
            addwarn(warn, warnlen, &nbad, "VRAMSPY_ON_FULL", v, "is neither wait nor drop; using wait");
    }
    return nbad;
}
