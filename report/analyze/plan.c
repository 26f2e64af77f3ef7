/* --plan (see plan.h and docs/report.md, "The plan"): load a plan, explicit or computed from a
 * model with the planners' formulas, and measure an analysis against it by purpose at the device
 * peak. Every error names the field at fault; nothing here reads a trace. */
#include "report/analyze/plan.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "shim/common/config.h"
#include "shim/common/human.h"
#include "report/read/input.h"

#define GiB 1073741824.0

static const char *const purpose_names[VSP_PLAN_COUNT_] = {"weights", "kv_cache", "activations", "overhead",
                                                          "total"};
/* the planners' usual expectations: weights ±2%, KV cache ±15%, activations ±30%, overhead ±40%,
 * total ±10% */
static const double default_tolerance[VSP_PLAN_COUNT_] = {0.02, 0.15, 0.30, 0.40, 0.10};

const char *vsp_plan_purpose_name(int p) { return p >= 0 && p < VSP_PLAN_COUNT_ ? purpose_names[p] : "?"; }

/* The units are the shim's (vsp_parse_size, shim/common/config.c: one table for VRAMSPY_* sizes and the
 * report's); this adds decimals and a space before the unit. */
int vsp_report_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    const char *point = p;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    const char *unit = p;
    while (*unit == ' ')
        unit++; /* "13.5 GiB" reads as in a document */
    char buf[80];
    if (p - s >= 64 || snprintf(buf, sizeof buf, "%.*s%s", (int)(p - s), s, unit) >= (int)sizeof buf)
        return -1;
    if (point == p) /* a whole number: exact */
        return vsp_parse_size(buf, out) < 0 ? -1 : 0;
    uint64_t mult; /* the unit's: that of "1" and the unit */
    snprintf(buf, sizeof buf, "1%s", unit);
    if (vsp_parse_size(buf, &mult) < 0)
        return -1;
    double v = strtod(s, NULL) * (double)mult;
    if (!(v < 18446744073709551615.0))
        return -1;
    *out = (uint64_t)(v + 0.5);
    return 0;
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The most a plan's size may be (1 EiB, far beyond any device): the sums of the purposes and the
 * headroom stay exact in 64 bits, never wrap. */
#define PLAN_MAX_BYTES (1ull << 60)

/* A planned size computed with doubles: NaN, infinite or beyond PLAN_MAX_BYTES is an error naming
 * the field (and what it was computed from). */
static int computed_size(double v, const char *field, const char *from, uint64_t *out, char *err, size_t len)
{
    if (!(v >= 0) || !(v <= (double)PLAN_MAX_BYTES))
        return fail(err, len, "field \"%s\": %g bytes%s%s is beyond what a plan can hold (at most 1 EiB)", field, v,
                    from ? " computed from " : "", from ? from : "");
    *out = (uint64_t)(v + 0.5);
    return 0;
}

static int size_field(json_t *v, const char *field, uint64_t *out, char *err, size_t len)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) >= 0) {
        return computed_size(json_real_value(v), field, NULL, out, err, len);
    } else if (!json_is_string(v) || vsp_report_parse_size(json_string_value(v), out) < 0) {
        return fail(err, len, "field \"%s\": not a size (bytes, or a string such as \"13.5GiB\")", field);
    }
    if (*out > PLAN_MAX_BYTES)
        return fail(err, len, "field \"%s\": %llu bytes is beyond what a plan can hold (at most 1 EiB)", field,
                    (unsigned long long)*out);
    return 0;
}

/* A whole number in [lo, hi]. */
static int int_field(json_t *v, const char *field, long long lo, long long hi, long long *out, char *err, size_t len)
{
    if (json_is_real(v) && fabs(json_real_value(v)) < 9e15 &&
        (double)(long long)json_real_value(v) == json_real_value(v)) {
        *out = (long long)json_real_value(v);
    } else if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else {
        return fail(err, len, "field \"%s\": not a whole number", field);
    }
    if (*out < lo || *out > hi)
        return fail(err, len, "field \"%s\": %lld is out of range (%lld to %lld)", field, *out, lo, hi);
    return 0;
}

/* A number in (lo, hi] (lo_open) or [lo, hi]. */
static int num_field(json_t *v, const char *field, double lo, int lo_open, double hi, double *out, char *err,
                     size_t len)
{
    if (!json_is_number(v))
        return fail(err, len, "field \"%s\": not a number", field);
    *out = json_number_value(v);
    if (!(*out <= hi) || (lo_open ? !(*out > lo) : !(*out >= lo)))
        return fail(err, len, "field \"%s\": %g is out of range (%s%g to %g)", field, *out,
                    lo_open ? "above " : "", lo, hi);
    return 0;
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (char)tolower((unsigned char)*a), y = (char)tolower((unsigned char)*b);
        if (x == '-' || x == ' ')
            x = '_';
        if (y == '-' || y == ' ')
            y = '_';
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Bytes per element of a dtype or quantization name; 0 when unknown. */
static double dtype_bytes(const char *s)
{
    static const struct { const char *name; double bytes; } t[] = {
        {"fp32", 4}, {"float32", 4}, {"float", 4}, {"fp16", 2}, {"float16", 2}, {"half", 2}, {"bf16", 2},
        {"bfloat16", 2}, {"int8", 1}, {"fp8", 1}, {"float8", 1}, {"fp8_e4m3", 1}, {"fp8_e5m2", 1}, {"w8a8", 1},
        {"bitsandbytes_8bit", 1}, {"awq", 0.55}, {"gptq", 0.55}, {"int4", 0.55}, {"4bit", 0.55}, {"nf4", 0.55},
        {"fp4", 0.55}, {"bitsandbytes_4bit", 0.55},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (ieq(s, t[i].name))
            return t[i].bytes;
    return 0;
}

#define DTYPES "fp32, fp16, bf16, int8, fp8, awq, gptq, int4, nf4, fp4"

/* An integer field of the model config (name "model.FIELD" in errors); -1 when absent. */
static int cfg_int(json_t *cfg, const char *key, long long *out, char *err, size_t len)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = -1;
        return 0;
    }
    char field[96];
    snprintf(field, sizeof field, "model.%s", key);
    return int_field(v, field, 1, 1ll << 40, out, err, len);
}

static int need(long long v, const char *key, const char *why, char *err, size_t len)
{
    if (v > 0)
        return 0;
    return fail(err, len, "field \"model.%s\": missing (needed %s)", key, why);
}

/* A JSON file read once (a FIFO without a writer reads as empty, never waits: input.h). */
static json_t *load_json_once(const char *path, json_error_t *je)
{
    FILE *f = vsp_input_open(path);
    if (!f) {
        memset(je, 0, sizeof *je);
        je->line = -1;
        snprintf(je->text, sizeof je->text, "unable to open %s: %s", path, strerror(errno));
        return NULL;
    }
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES, je);
    fclose(f);
    return j;
}

static json_t *load_json_file(const char *path, char *err, size_t len, const char *field)
{
    json_error_t je;
    json_t *j = load_json_once(path, &je);
    if (!j && je.line < 1) /* not opened: jansson's text names the file and the reason */
        fail(err, len, "%s%s%s%s", field ? "field \"" : "", field ? field : "", field ? "\": " : "", je.text);
    else if (!j)
        fail(err, len, "%s%s%s%s: line %d: %s", field ? "field \"" : "", field ? field : "", field ? "\": " : "",
             path, je.line, je.text);
    return j;
}

int vsp_plan_from_json(json_t *root, const char *dir, struct vsp_plan *p, char *err, size_t len)
{
    memset(p, 0, sizeof *p);
    for (int k = 0; k < VSP_PLAN_COUNT_; k++)
        p->tolerance[k] = default_tolerance[k];
    p->utilization = 0.9;
    p->tensor_parallel_size = 1;
    if (!json_is_object(root))
        return fail(err, len, "not a JSON object");
    static const char *const known[] = {"weights", "kv_cache", "activations", "overhead", "total", "tolerances",
                                        "utilization", "device_memory", "model", "context_length", "concurrency",
                                        "num_parameters", "quantization", "kv_dtype", "tensor_parallel_size",
                                        "fragmentation_factor"};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]))
            i++;
        static const char *const hf[] = {"num_hidden_layers", "hidden_size", "architectures", "model_type",
                                         "vocab_size", "num_attention_heads"};
        for (size_t h = 0; i == sizeof known / sizeof known[0] && h < sizeof hf / sizeof *hf; h++)
            if (!strcmp(key, hf[h]))
                return fail(err, len, "field \"%s\": unknown; this looks like a Hugging Face config.json, which a "
                                      "plan names: {\"model\": \"config.json\", \"context_length\": 4096} (docs/report.md, "
                                      "\"The plan\")", key);
        if (i == sizeof known / sizeof known[0])
            return fail(err, len, "field \"%s\": unknown (weights, kv_cache, activations, overhead, total, "
                                  "tolerances, utilization, device_memory, model, context_length, concurrency, "
                                  "num_parameters, quantization, kv_dtype, tensor_parallel_size, "
                                  "fragmentation_factor)", key);
    }
    for (int k = 0; k < VSP_PLAN_COUNT_; k++) {
        json_t *s = json_object_get(root, purpose_names[k]);
        if (s) {
            if (size_field(s, purpose_names[k], &p->bytes[k], err, len) < 0)
                return -1;
            p->have[k] = 1;
        }
    }
    json_t *tol = json_object_get(root, "tolerances");
    if (tol) {
        if (!json_is_object(tol))
            return fail(err, len, "field \"tolerances\": not an object of purpose: fraction");
        json_object_foreach(tol, key, v) {
            int k = 0;
            while (k < VSP_PLAN_COUNT_ && strcmp(key, purpose_names[k]))
                k++;
            char field[96];
            snprintf(field, sizeof field, "tolerances.%s", key);
            if (k == VSP_PLAN_COUNT_)
                return fail(err, len, "field \"%s\": unknown purpose (weights, kv_cache, activations, overhead, "
                                      "total)", field);
            if (json_is_number(v) && json_number_value(v) > 1)
                return fail(err, len, "field \"%s\": %g is above 1: a tolerance is a fraction (0.02 is +-2%%, 1 is "
                                      "+-100%%)", field, json_number_value(v));
            if (num_field(v, field, 0, 0, 1, &p->tolerance[k], err, len) < 0)
                return -1;
        }
    }
    if ((v = json_object_get(root, "utilization")) &&
        num_field(v, "utilization", 0, 1, 1, &p->utilization, err, len) < 0)
        return -1;
    if ((v = json_object_get(root, "device_memory")) && size_field(v, "device_memory", &p->device_memory, err, len) < 0)
        return -1;
    json_t *model = json_object_get(root, "model");
    static const char *const run_params[] = {"context_length", "concurrency", "num_parameters", "quantization",
                                             "kv_dtype", "tensor_parallel_size", "fragmentation_factor"};
    if (!model) {
        for (size_t i = 0; i < sizeof run_params / sizeof run_params[0]; i++)
            if (json_object_get(root, run_params[i]))
                return fail(err, len, "field \"%s\": a run parameter of the model form, but there is no \"model\"",
                            run_params[i]);
        int any = 0;
        for (int k = 0; k < VSP_PLAN_COUNT_; k++)
            any |= p->have[k];
        if (!any)
            return fail(err, len, "field \"weights\": missing (a plan names expected sizes by purpose: weights, "
                                  "kv_cache, activations, overhead, total; or a \"model\")");
        return 0;
    }
    /* the model form */
    p->model = 1;
    json_t *cfg = model, *loaded = NULL;
    if (json_is_string(model)) {
        const char *mp = json_string_value(model);
        char full[PATH_MAX + 64];
        if (mp[0] != '/' && dir && *dir)
            snprintf(full, sizeof full, "%s/%s", dir, mp);
        else
            snprintf(full, sizeof full, "%s", mp);
        if (!(loaded = load_json_file(full, err, len, "model")))
            return -1;
        cfg = loaded;
    }
    int rc = -1;
    if (!json_is_object(cfg)) {
        fail(err, len, "field \"model\": not a Hugging Face config (a JSON object, or the path of a config.json)");
        goto out;
    }
    long long L, H, A, KVH, I, V, HD, ctx = 0, conc = 1, tp = 1;
    if (cfg_int(cfg, "num_hidden_layers", &L, err, len) < 0 || cfg_int(cfg, "hidden_size", &H, err, len) < 0 ||
        cfg_int(cfg, "num_attention_heads", &A, err, len) < 0 ||
        cfg_int(cfg, "num_key_value_heads", &KVH, err, len) < 0 ||
        cfg_int(cfg, "intermediate_size", &I, err, len) < 0 || cfg_int(cfg, "vocab_size", &V, err, len) < 0 ||
        cfg_int(cfg, "head_dim", &HD, err, len) < 0)
        goto out;
    json_t *tie = json_object_get(cfg, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie) && !json_is_null(tie)) {
        fail(err, len, "field \"model.tie_word_embeddings\": not true or false");
        goto out;
    }
    int tied = tie && json_is_true(tie);
    if (KVH < 0)
        KVH = A; /* no grouped-query attention: as many KV heads as heads */
    if (HD < 0 && H > 0 && A > 0)
        HD = H / A;
    /* run parameters */
    if (!(v = json_object_get(root, "context_length"))) {
        fail(err, len, "field \"context_length\": missing (the model form needs the tokens per sequence)");
        goto out;
    }
    if (int_field(v, "context_length", 1, 1ll << 40, &ctx, err, len) < 0)
        goto out;
    if ((v = json_object_get(root, "concurrency")) && int_field(v, "concurrency", 1, 1ll << 30, &conc, err, len) < 0)
        goto out;
    if ((v = json_object_get(root, "tensor_parallel_size")) &&
        int_field(v, "tensor_parallel_size", 1, 65536, &tp, err, len) < 0)
        goto out;
    double frag = 1.15;
    if ((v = json_object_get(root, "fragmentation_factor")) &&
        num_field(v, "fragmentation_factor", 0, 1, 100, &frag, err, len) < 0)
        goto out;
    /* the weights' dtype: the run's quantization, else the config's own (quantization_config,
     * torch_dtype or dtype), else BF16 */
    double bpp = 2, dtype = 0;
    json_t *td = json_object_get(cfg, "torch_dtype");
    if (!td)
        td = json_object_get(cfg, "dtype");
    if (td && json_is_string(td) && !(dtype = dtype_bytes(json_string_value(td)))) {
        fail(err, len, "field \"model.torch_dtype\": unknown dtype '%s' (float32, float16, bfloat16)",
             json_string_value(td));
        goto out;
    }
    if (dtype)
        bpp = dtype;
    json_t *qc = json_object_get(cfg, "quantization_config");
    json_t *qm = qc ? json_object_get(qc, "quant_method") : NULL;
    if (qm && json_is_string(qm) && dtype_bytes(json_string_value(qm)))
        bpp = dtype_bytes(json_string_value(qm));
    if ((v = json_object_get(root, "quantization"))) {
        if (!json_is_string(v) || !dtype_bytes(json_string_value(v))) {
            fail(err, len, "field \"quantization\": unknown '%s' (" DTYPES ")",
                 json_is_string(v) ? json_string_value(v) : "(not a string)");
            goto out;
        }
        bpp = dtype_bytes(json_string_value(v));
    }
    double kvb = dtype ? dtype : 2;
    if ((v = json_object_get(root, "kv_dtype"))) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (!s || (!ieq(s, "auto") && (!dtype_bytes(s) || dtype_bytes(s) < 1))) {
            fail(err, len, "field \"kv_dtype\": unknown '%s' (auto, fp32, fp16, bf16, fp8, int8)",
                 s ? s : "(not a string)");
            goto out;
        }
        if (!ieq(s, "auto"))
            kvb = dtype_bytes(s);
    }
    double params;
    if ((v = json_object_get(root, "num_parameters"))) {
        if (json_is_number(v) && json_number_value(v) > 0) {
            params = json_number_value(v);
        } else if (json_is_string(v)) {
            /* "7B", "1.5B", "350M": counts, not bytes */
            char *end;
            errno = 0;
            double n = strtod(json_string_value(v), &end);
            double m = !strcmp(end, "") ? 1 : !strcmp(end, "K") ? 1e3 : !strcmp(end, "M") ? 1e6
                     : !strcmp(end, "B") ? 1e9 : !strcmp(end, "T") ? 1e12 : 0;
            if (errno || end == json_string_value(v) || !(n > 0) || !m) {
                fail(err, len, "field \"num_parameters\": not a count (a number, or a string such as \"7B\")");
                goto out;
            }
            params = n * m;
        } else {
            fail(err, len, "field \"num_parameters\": not a count (a number above 0, or a string such as \"7B\")");
            goto out;
        }
    } else {
        const char *why = "to count the parameters (or give num_parameters)";
        if (need(L, "num_hidden_layers", why, err, len) < 0 || need(H, "hidden_size", why, err, len) < 0 ||
            need(A, "num_attention_heads", why, err, len) < 0 || need(I, "intermediate_size", why, err, len) < 0 ||
            need(V, "vocab_size", why, err, len) < 0)
            goto out;
        /* Llama-style: embeddings, an untied output head, and per layer q/o, k/v, a gated MLP and
         * two norms */
        double h = (double)H, per_layer = 2.0 * h * (double)A * (double)HD + 2.0 * h * (double)KVH * (double)HD +
                                          3.0 * h * (double)I + 2.0 * h;
        params = (double)V * h * (tied ? 1 : 2) + (double)L * per_layer;
    }
    const char *why = "for the KV cache";
    if (need(L, "num_hidden_layers", why, err, len) < 0 || need(A, "num_attention_heads", why, err, len) < 0 ||
        need(HD, "hidden_size", why, err, len) < 0)
        goto out;
    p->num_parameters = params;
    p->bytes_per_parameter = bpp;
    p->kv_bytes_per_element = kvb;
    p->tensor_parallel_size = (int)tp;
    /* per device: tensor parallelism splits the weights and the KV heads over tp devices */
    if (!p->have[VSP_PLAN_WEIGHTS]) {
        if (computed_size(params * bpp / (double)tp, "weights",
                          json_object_get(root, "num_parameters") ? "\"num_parameters\" x bytes per parameter"
                                                                  : "the model's parameters x bytes per parameter",
                          &p->bytes[VSP_PLAN_WEIGHTS], err, len) < 0)
            goto out;
        p->have[VSP_PLAN_WEIGHTS] = 1;
    }
    if (!p->have[VSP_PLAN_KV_CACHE]) {
        double kv = 2.0 * (double)L * (double)KVH * (double)HD * (double)ctx * (double)conc * kvb * frag / (double)tp;
        if (computed_size(kv, "kv_cache", "2 x model.num_hidden_layers x model.num_key_value_heads x head_dim x "
                                          "\"context_length\" x \"concurrency\" x KV bytes x fragmentation_factor",
                          &p->bytes[VSP_PLAN_KV_CACHE], err, len) < 0)
            goto out;
        p->have[VSP_PLAN_KV_CACHE] = 1;
    }
    if (!p->have[VSP_PLAN_OVERHEAD]) {
        p->overhead_computed = 1; /* needs the device's memory: per trace */
        p->have[VSP_PLAN_OVERHEAD] = 1;
    }
    rc = 0;
out:
    json_decref(loaded);
    return rc;
}

int vsp_plan_load(const char *path, struct vsp_plan *p, char *err, size_t len)
{
    json_error_t je;
    json_t *root = load_json_once(path, &je);
    if (!root && je.line < 1)
        return fail(err, len, "%s", je.text);
    if (!root)
        return fail(err, len, "line %d: %s", je.line, je.text);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    int rc = vsp_plan_from_json(root, dir, p, err, len);
    json_decref(root);
    return rc;
}

static const struct vsp_purpose_row *purpose(const struct vsp_purpose_row *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (ieq(rows[i].label, name))
            return &rows[i];
    return NULL;
}

static int add_plan_finding(struct vsp_analysis *a, int32_t device, const char *name, uint64_t measured,
                            uint64_t planned, double deviation, double tolerance)
{
    struct vsp_finding *g = realloc(a->findings, (a->nfindings + 1) * sizeof *g);
    if (!g)
        return -1;
    a->findings = g;
    struct vsp_finding *f = &g[a->nfindings++];
    memset(f, 0, sizeof *f);
    f->kind = VSP_F_PLAN; /* the last kind: appending keeps the findings sorted by kind */
    f->memory = VSP_MEM_DEVICE;
    f->requested = f->free_bytes = f->total_bytes = UINT64_MAX;
    f->count = 1;
    f->bytes = measured;
    f->planned = planned;
    f->deviation = deviation;
    f->tolerance = tolerance;
    f->first_time_ns = a->peak_time_ns;
    f->device = device;
    snprintf(f->purpose, sizeof f->purpose, "%s", name);
    return 0;
}

/* One comparison: the bytes by purpose at one peak (the process's, or one device's). */
static int compare(const struct vsp_plan *p, struct vsp_analysis *a, const struct vsp_purpose_row *rows, size_t nrows,
                   uint64_t peak, int32_t device, struct vsp_plan_result *r)
{
    uint64_t dev = p->device_memory ? p->device_memory : a->device_total_bytes;
    uint64_t planned[VSP_PLAN_COUNT_];
    int have[VSP_PLAN_COUNT_];
    memcpy(planned, p->bytes, sizeof planned);
    memcpy(have, p->have, sizeof have);
    if (p->overhead_computed) {
        double oh = 0.02 * (double)dev;
        if (oh < GiB)
            oh = GiB;
        oh += 0.25 * GiB * (double)(p->tensor_parallel_size - 1);
        planned[VSP_PLAN_OVERHEAD] = (uint64_t)(oh + 0.5);
    }
    uint64_t sum = 0;
    for (int k = 0; k < VSP_PLAN_TOTAL; k++)
        if (have[k])
            sum += planned[k];
    if (!have[VSP_PLAN_TOTAL] && have[VSP_PLAN_WEIGHTS] && have[VSP_PLAN_KV_CACHE]) {
        /* a plan of one purpose says nothing of the total */
        planned[VSP_PLAN_TOTAL] = sum;
        have[VSP_PLAN_TOTAL] = 1;
    }
    /* measured at the peak: bytes live under each label then */
    const struct vsp_purpose_row *w = purpose(rows, nrows, "weights"), *kv = purpose(rows, nrows, "kv_cache"),
                                 *act = purpose(rows, nrows, "activations"), *un = purpose(rows, nrows, "(unlabelled)");
    uint64_t unlabelled = nrows ? (un ? un->peak_bytes : 0) : peak;
    uint64_t measured[VSP_PLAN_COUNT_] = {w ? w->peak_bytes : 0, kv ? kv->peak_bytes : 0,
                                          act ? act->peak_bytes : unlabelled, unlabelled, peak};
    r->activations_labelled = act != NULL;
    r->device = device;
    for (int k = 0; k < VSP_PLAN_COUNT_; k++) {
        if (!have[k])
            continue;
        struct vsp_plan_row *row = &r->rows[r->nrows++];
        row->purpose = k;
        row->name = purpose_names[k];
        row->planned = planned[k];
        row->tolerance = p->tolerance[k];
        row->have_measured = !(k == VSP_PLAN_OVERHEAD && !act);
        row->measured = row->have_measured ? measured[k] : 0;
        if (!row->have_measured) {
            row->ok = 1; /* not measured: not judged */
            continue;
        }
        row->deviation = planned[k] ? ((double)measured[k] - (double)planned[k]) / (double)planned[k] : 0;
        row->ok = planned[k] ? fabs(row->deviation) <= row->tolerance + 1e-12 : measured[k] == 0;
        if (!row->ok &&
            add_plan_finding(a, device, purpose_names[k], measured[k], planned[k], row->deviation, row->tolerance) < 0)
            return -1;
    }
    r->utilization = p->utilization;
    r->device_memory = dev;
    if (dev) {
        /* the device's usable memory less the larger of what was planned and what was measured */
        uint64_t used = sum > peak ? sum : peak;
        double budget = (double)dev * p->utilization;
        double h = budget - (double)used;
        r->have_headroom = 1;
        if (h > 9.2e18) /* a device's memory from a corrupt trace: never a wrapped headroom */
            h = 9.2e18;
        r->headroom_bytes = h >= 0 ? (int64_t)(h + 0.5) : -(int64_t)(-h + 0.5);
        r->risk = r->headroom_bytes >= (int64_t)(2 * GiB) ? "LOW" : r->headroom_bytes >= 0 ? "MEDIUM" : "HIGH";
        if (r->headroom_bytes < 0 && add_plan_finding(a, device, "headroom", used, (uint64_t)budget, 0, 0) < 0)
            return -1;
    }
    return 0;
}

int vsp_plan_apply(const struct vsp_plan *p, struct vsp_analysis *a)
{
    /* one block (a->plan is freed with one free): the process's result, then one per device when
     * the process used several */
    size_t nd = 0;
    for (size_t d = 0; d < a->ndevices; d++)
        nd += a->devices[d].live_at_peak != NULL;
    struct vsp_plan_result *r = calloc(1 + nd, sizeof *r);
    if (!r)
        return -1;
    free(a->plan);
    a->plan = r;
    if (!nd)
        return compare(p, a, a->purposes, a->npurposes, a->peak_bytes,
                       a->ndevices == 1 ? a->devices[0].device : -1, r);
    /* several devices: each against the plan (a plan is per device), the process's result being
     * that of the device with the highest peak */
    r->devices = r + 1;
    size_t top = 0;
    uint64_t top_peak = 0;
    for (size_t d = 0; d < a->ndevices; d++) {
        const struct vsp_device_row *dr = &a->devices[d];
        if (!dr->live_at_peak)
            continue;
        struct vsp_plan_result *dres = &r->devices[r->ndevices];
        if (compare(p, a, dr->purposes, dr->npurposes, dr->peak_bytes, dr->device, dres) < 0)
            return -1;
        if (dr->peak_bytes > top_peak || r->ndevices == 0) {
            top = (size_t)r->ndevices;
            top_peak = dr->peak_bytes;
        }
        r->ndevices++;
    }
    struct vsp_plan_result *devs = r->devices;
    int ndevs = r->ndevices;
    *r = devs[top];
    r->devices = devs;
    r->ndevices = ndevs;
    return 0;
}

json_t *vsp_plan_json(const struct vsp_plan_result *r)
{
    json_t *o = json_object(), *ps = json_array();
    for (int i = 0; i < r->nrows; i++) {
        const struct vsp_plan_row *row = &r->rows[i];
        json_t *j = json_object();
        json_object_set_new(j, "purpose", json_string(purpose_names[row->purpose]));
        json_object_set_new(j, "planned_bytes", json_integer((json_int_t)row->planned));
        json_object_set_new(j, "measured_bytes", row->have_measured ? json_integer((json_int_t)row->measured)
                                                                    : json_null());
        json_object_set_new(j, "deviation", row->have_measured && row->planned ? json_real(row->deviation)
                                                                               : json_null());
        json_object_set_new(j, "tolerance", json_real(row->tolerance));
        json_object_set_new(j, "ok", json_boolean(row->ok));
        json_array_append_new(ps, j);
    }
    json_object_set_new(o, "device", r->device >= 0 ? json_integer(r->device) : json_null());
    json_object_set_new(o, "purposes", ps);
    json_object_set_new(o, "headroom_bytes", r->have_headroom ? json_integer(r->headroom_bytes) : json_null());
    json_object_set_new(o, "risk", r->risk ? json_string(r->risk) : json_null());
    json_object_set_new(o, "device_memory_bytes", r->device_memory ? json_integer((json_int_t)r->device_memory)
                                                                  : json_null());
    json_object_set_new(o, "utilization", json_real(r->utilization));
    json_object_set_new(o, "activations_labelled", json_boolean(r->activations_labelled));
    if (r->ndevices) {
        json_t *ds = json_array();
        for (int i = 0; i < r->ndevices; i++)
            json_array_append_new(ds, vsp_plan_json(&r->devices[i]));
        json_object_set_new(o, "devices", ds);
    }
    return o;
}

void vsp_plan_text(FILE *out, const struct vsp_plan_result *r)
{
    if (r->ndevices) { /* several devices: a table each */
        for (int i = 0; i < r->ndevices; i++)
            vsp_plan_text(out, &r->devices[i]);
        return;
    }
    char b1[32], b2[32];
    char where[48] = "";
    if (r->device >= 0)
        snprintf(where, sizeof where, " of device %d", (int)r->device);
    fprintf(out, "\nplan, at the device peak%s:\n  %-12s %12s %12s %10s %10s  %s\n", where, "purpose", "planned",
            "measured", "deviation", "tolerance", "verdict");
    for (int i = 0; i < r->nrows; i++) {
        const struct vsp_plan_row *row = &r->rows[i];
        char dev[32] = "-", tol[32];
        vsp_human_bytes(b1, sizeof b1, row->planned);
        if (row->have_measured)
            vsp_human_bytes(b2, sizeof b2, row->measured);
        else
            snprintf(b2, sizeof b2, "not measured");
        if (row->have_measured && row->planned)
            snprintf(dev, sizeof dev, "%+.1f%%", row->deviation * 100);
        snprintf(tol, sizeof tol, "+-%g%%", row->tolerance * 100);
        fprintf(out, "  %-12s %12s %12s %10s %10s  %s\n", purpose_names[row->purpose], b1, b2, dev, tol,
                !row->have_measured ? "-" : row->ok ? "ok" : "OUTSIDE");
    }
    if (!r->activations_labelled)
        fprintf(out, "  (nothing is labelled activations: activations are the unlabelled bytes, overhead is "
                     "not measured)\n");
    if (r->have_headroom) {
        vsp_human_bytes(b1, sizeof b1, r->device_memory);
        uint64_t h = r->headroom_bytes < 0 ? (uint64_t)-r->headroom_bytes : (uint64_t)r->headroom_bytes;
        vsp_human_bytes(b2, sizeof b2, h);
        fprintf(out, "  headroom %s%s of %s x %.2f utilisation: risk %s\n", r->headroom_bytes < 0 ? "-" : "", b2,
                b1, r->utilization, r->risk);
    } else {
        fprintf(out, "  headroom unknown: the trace does not record the device's memory (give \"device_memory\")\n");
    }
}
