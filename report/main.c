/* vramspy-report: turn traces into verdicts — leaks, host fallback, out-of-memory, fragmentation,
 * invalid frees — symbolised, as text or JSON (schema vramspy-report/1), with exit codes for CI.
 * Interface (stable): docs/report.md. Exit: 0 no finding of a --fail-on kind, 1 at least one,
 * 2 usage error or a bad input file (one line on stderr naming it). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "config.h"
#include "formats.h"
#include "output.h"
#include "purposes.h"
#include "suppress.h"
#include "symbolize.h"

#define VERSION "0.1.0"

enum { FMT_TEXT, FMT_JSON, FMT_FOLDED, FMT_PERFETTO, FMT_SVG, FMT_JUNIT };

struct opts {
    int json;
    int fmt;
    int weigh;
    const char *suppress, *output, *purposes;
    uint64_t min_leak;
    unsigned fail_mask;
    const char *sysroot, *debug_dir;
    struct vsp_analyze_opts an;
    int color;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vramspy-report [options] TRACE...\n"
            "  --format FORMAT        text (default), json, folded (flame graph stacks), perfetto\n"
            "                         (Chrome trace-event JSON), svg (timeline picture), junit (XML)\n"
            "  --fail-on KINDS        exit 1 when a finding of these kinds exists: comma-separated\n"
            "                         leak, host-fallback, fragmentation, oom, invalid-free, peak, or any\n"
            "  --weigh WHAT           folded: leaks (bytes live at the end, default), peak (bytes live\n"
            "                         at the device peak) or allocated (all bytes ever allocated)\n"
            "  --suppress FILE        drop findings matching a JSON list of {kind, function, module} rules\n"
            "  --max-peak SIZE        a 'peak' finding when device memory peaks above SIZE\n"
            "  --min-leak SIZE        ignore leaks smaller than SIZE (sizes: bytes, KiB/MiB/GiB, KB/MB/GB)\n"
            "  --purposes FILE        label bytes by purpose: a JSON object from label to function/module globs\n"
            "  -o, --output FILE      write the report to FILE instead of stdout\n"
            "  --sysroot DIR          find the traced process's binaries under DIR\n"
            "  --debug-dir DIR        find binaries (by name) and debug files (by build-id) in DIR\n"
            "  --fallback-window MS   a host allocation this soon after a device out-of-memory on the\n"
            "                         same thread is marked after_oom (default 5000)\n"
            "  --help, --version\n"
            "exit status: 0 no finding of a --fail-on kind, 1 at least one, 2 usage error or bad input\n");
}

static int parse_fail_on(const char *s, unsigned *mask)
{
    char *dup = strdup(s), *save = NULL;
    int ok = 1;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "any")) {
            *mask = (1u << VSP_F_COUNT_) - 1;
            continue;
        }
        int found = 0;
        for (int k = 0; k < VSP_F_COUNT_; k++) {
            if (!strcmp(tok, vsp_finding_cli_name(k)) || !strcmp(tok, vsp_finding_json_name(k))) {
                *mask |= 1u << k;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "vramspy-report: --fail-on: unknown kind '%s' (leak, host-fallback, fragmentation, "
                            "oom, invalid-free, peak, any)\n", tok);
            ok = 0;
        }
    }
    free(dup);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o = {.an.fallback_window_ns = 5000000000ull};
    const char *format = "text";
    enum { OPT_FORMAT = 1, OPT_FAIL, OPT_SYSROOT, OPT_DEBUG, OPT_WINDOW, OPT_HELP, OPT_VERSION, OPT_WEIGH,
           OPT_SUPPRESS, OPT_MAXPEAK, OPT_MINLEAK, OPT_PURPOSES };
    static const struct option lo[] = {
        {"format", required_argument, NULL, OPT_FORMAT}, {"fail-on", required_argument, NULL, OPT_FAIL},
        {"weigh", required_argument, NULL, OPT_WEIGH}, {"suppress", required_argument, NULL, OPT_SUPPRESS},
        {"max-peak", required_argument, NULL, OPT_MAXPEAK}, {"min-leak", required_argument, NULL, OPT_MINLEAK},
        {"output", required_argument, NULL, 'o'}, {"purposes", required_argument, NULL, OPT_PURPOSES},
        {"sysroot", required_argument, NULL, OPT_SYSROOT}, {"debug-dir", required_argument, NULL, OPT_DEBUG},
        {"fallback-window", required_argument, NULL, OPT_WINDOW}, {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT: {
            static const char *const names[] = {"text", "json", "folded", "perfetto", "svg", "junit"};
            format = optarg;
            o.fmt = -1;
            for (int k = 0; k < 6; k++)
                if (!strcmp(format, names[k]))
                    o.fmt = k;
            if (o.fmt < 0) {
                fprintf(stderr, "vramspy-report: --format: unknown format '%s' (text, json, folded, perfetto, svg, "
                                "junit)\n", format);
                return 2;
            }
            break;
        }
        case OPT_WEIGH:
            if (!strcmp(optarg, "leaks"))
                o.weigh = VSP_WEIGH_LEAKS;
            else if (!strcmp(optarg, "peak"))
                o.weigh = VSP_WEIGH_PEAK;
            else if (!strcmp(optarg, "allocated"))
                o.weigh = VSP_WEIGH_ALLOCATED;
            else {
                fprintf(stderr, "vramspy-report: --weigh: '%s' is not leaks, peak or allocated\n", optarg);
                return 2;
            }
            break;
        case OPT_SUPPRESS: o.suppress = optarg; break;
        case OPT_PURPOSES: o.purposes = optarg; break;
        case 'o': o.output = optarg; break;
        case OPT_MAXPEAK:
        case OPT_MINLEAK: {
            uint64_t v;
            if (vsp_parse_size(optarg, &v) < 0) {
                fprintf(stderr, "vramspy-report: %s: not a size: '%s' (bytes, or with KiB/MiB/GiB or KB/MB/GB)\n",
                        c == OPT_MAXPEAK ? "--max-peak" : "--min-leak", optarg);
                return 2;
            }
            if (c == OPT_MAXPEAK)
                o.an.max_peak = v;
            else
                o.min_leak = v;
            break;
        }
        case OPT_FAIL:
            if (parse_fail_on(optarg, &o.fail_mask) < 0)
                return 2;
            break;
        case OPT_SYSROOT: o.sysroot = optarg; break;
        case OPT_DEBUG: o.debug_dir = optarg; break;
        case OPT_WINDOW: {
            char *end;
            errno = 0;
            unsigned long long ms = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "vramspy-report: --fallback-window: not a number of milliseconds: '%s'\n", optarg);
                return 2;
            }
            o.an.fallback_window_ns = ms * 1000000ull;
            break;
        }
        case 'h':
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("vramspy-report %s (trace format %u)\n", VERSION, VSP_TRACE_VERSION); return 0;
        default:
            if (optopt)
                fprintf(stderr, "vramspy-report: option '%s' needs an argument or is unknown\n", argv[optind - 1]);
            else
                fprintf(stderr, "vramspy-report: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vramspy-report: no trace given\n");
        usage(stderr);
        return 2;
    }
    (void)format;
    o.json = o.fmt == FMT_JSON;
    o.an.live_at_peak = o.fmt == FMT_FOLDED && o.weigh == VSP_WEIGH_PEAK;
    static struct vsp_purposes purposes;
    if (o.purposes) {
        char err[300];
        FILE *pf = fopen(o.purposes, "r");
        static char text[65536];
        size_t n = pf ? fread(text, 1, sizeof text - 1, pf) : 0;
        if (pf)
            fclose(pf);
        text[n] = 0;
        if (!pf || n == sizeof text - 1 || vsp_purposes_parse(text, &purposes, err, sizeof err) < 0) {
            fprintf(stderr, "vramspy-report: --purposes %s: %s\n", o.purposes,
                    !pf ? strerror(errno) : n == sizeof text - 1 ? "larger than 64 KiB" : err);
            return 2;
        }
        o.an.live_at_peak = 1;
    }
    struct vsp_rules *rules = NULL;
    if (o.suppress) {
        char err[1200];
        rules = vsp_rules_load(o.suppress, err, sizeof err);
        if (!rules) {
            fprintf(stderr, "vramspy-report: --suppress %s\n", err);
            return 2;
        }
    }
    FILE *out = stdout;
    if (o.output && !(out = fopen(o.output, "w"))) {
        fprintf(stderr, "vramspy-report: --output %s: %s\n", o.output, strerror(errno));
        vsp_rules_free(rules);
        return 2;
    }
    const char *nc = getenv("NO_COLOR");
    o.color = o.fmt == FMT_TEXT && !o.output && isatty(STDOUT_FILENO) && !(nc && *nc);
    int ntr = argc - optind;
    struct vsp_analysis *as = calloc((size_t)ntr, sizeof *as);
    int bad = 0;
    for (int i = 0; i < ntr; i++) {
        if (vsp_analyze_file(argv[optind + i], &o.an, &as[i]) < 0) {
            fprintf(stderr, "vramspy-report: %s\n", as[i].error);
            bad = 1;
        }
    }
    if (bad) {
        for (int i = 0; i < ntr; i++)
            vsp_analysis_free(&as[i]);
        free(as);
        return 2;
    }
    int failing = 0;
    json_t *all = o.json && ntr > 1 ? json_array() : NULL;
    if (o.fmt == FMT_PERFETTO)
        vsp_perfetto_begin(out);
    else if (o.fmt == FMT_SVG)
        vsp_svg_begin(out, ntr);
    else if (o.fmt == FMT_JUNIT)
        vsp_junit_begin(out);
    for (int i = 0; i < ntr; i++) {
        const char *path = argv[optind + i];
        struct vsp_symbolizer *sym = vsp_sym_new(&as[i], o.sysroot, o.debug_dir);
        vsp_apply_suppressions(&as[i], rules, o.min_leak, sym);
        vsp_purpose_breakdown(&as[i], o.purposes ? &purposes : NULL, sym);
        for (size_t k = 0; k < as[i].nfindings; k++)
            if (o.fail_mask & (1u << as[i].findings[k].kind))
                failing = 1;
        switch (o.fmt) {
        case FMT_JSON: {
            json_t *r = vsp_report_json(path, &as[i], sym);
            if (all) {
                json_array_append_new(all, r);
            } else {
                json_dumpf(r, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fputc('\n', out);
                json_decref(r);
            }
            break;
        }
        case FMT_TEXT:
            if (i)
                fputc('\n', out);
            vsp_report_text(out, path, &as[i], sym, o.color);
            break;
        case FMT_FOLDED: vsp_folded(out, &as[i], sym, o.weigh); break;
        case FMT_PERFETTO: vsp_perfetto_trace(out, &as[i], i == 0); break;
        case FMT_SVG: vsp_svg_trace(out, path, &as[i], i); break;
        case FMT_JUNIT: vsp_junit_trace(out, path, &as[i], sym, o.fail_mask); break;
        }
        vsp_sym_free(sym);
        vsp_analysis_free(&as[i]);
    }
    if (all) {
        json_dumpf(all, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(all);
    }
    if (o.fmt == FMT_PERFETTO)
        vsp_perfetto_end(out);
    else if (o.fmt == FMT_SVG)
        vsp_svg_end(out);
    else if (o.fmt == FMT_JUNIT)
        vsp_junit_end(out);
    vsp_rules_free(rules);
    free(as);
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "vramspy-report: writing the report failed: %s\n", strerror(errno));
        return 2;
    }
    return failing ? 1 : 0;
}
