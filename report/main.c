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
#include "output.h"
#include "symbolize.h"

#define VERSION "0.1.0"

struct opts {
    int json;
    unsigned fail_mask;
    const char *sysroot, *debug_dir;
    struct vsp_analyze_opts an;
    int color;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vramspy-report [options] TRACE...\n"
            "  --format text|json     output format (default text)\n"
            "  --fail-on KINDS        exit 1 when a finding of these kinds exists: comma-separated\n"
            "                         leak, host-fallback, fragmentation, oom, invalid-free, or any\n"
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
                            "oom, invalid-free, any)\n", tok);
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
    enum { OPT_FORMAT = 1, OPT_FAIL, OPT_SYSROOT, OPT_DEBUG, OPT_WINDOW, OPT_HELP, OPT_VERSION };
    static const struct option lo[] = {
        {"format", required_argument, NULL, OPT_FORMAT}, {"fail-on", required_argument, NULL, OPT_FAIL},
        {"sysroot", required_argument, NULL, OPT_SYSROOT}, {"debug-dir", required_argument, NULL, OPT_DEBUG},
        {"fallback-window", required_argument, NULL, OPT_WINDOW}, {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            format = optarg;
            if (strcmp(format, "text") && strcmp(format, "json")) {
                fprintf(stderr, "vramspy-report: --format: unknown format '%s' (text, json)\n", format);
                return 2;
            }
            break;
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
    o.json = !strcmp(format, "json");
    const char *nc = getenv("NO_COLOR");
    o.color = !o.json && isatty(STDOUT_FILENO) && !(nc && *nc);
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
    for (int i = 0; i < ntr; i++) {
        struct vsp_symbolizer *sym = vsp_sym_new(&as[i], o.sysroot, o.debug_dir);
        for (size_t k = 0; k < as[i].nfindings; k++)
            if (o.fail_mask & (1u << as[i].findings[k].kind))
                failing = 1;
        if (o.json) {
            json_t *r = vsp_report_json(argv[optind + i], &as[i], sym);
            if (all) {
                json_array_append_new(all, r);
            } else {
                json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fputc('\n', stdout);
                json_decref(r);
            }
        } else {
            if (i)
                fputc('\n', stdout);
            vsp_report_text(stdout, argv[optind + i], &as[i], sym, o.color);
        }
        vsp_sym_free(sym);
        vsp_analysis_free(&as[i]);
    }
    if (all) {
        json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(all);
    }
    free(as);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "vramspy-report: writing the report failed: %s\n", strerror(errno));
        return 2;
    }
    return failing ? 1 : 0;
}
