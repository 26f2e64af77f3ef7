/* vramspy-report: turn traces into verdicts — leaks, host fallback, out-of-memory, fragmentation,
 * invalid frees, crashes, failed allocations — symbolised, as text or JSON (schema
 * vramspy-report/1), with exit codes for CI. Interface (stable): docs/report.md. Exit: 0 no
 * finding of a --fail-on kind, 1 at least one, 2 usage error or a bad input file (one line on
 * stderr naming it). --check-options validates every option exactly as a run would and reads no
 * trace: vramspy run calls it before it starts the program, so a bad option never opens the gate. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/analyze/analyze.h"
#include "shim/common/config.h"
#include "report/out/formats.h"
#include "report/analyze/holders.h"
#include "report/read/input.h"
#include "report/out/job.h"
#include "report/out/output.h"
#include "report/analyze/plan.h"
#include "shim/common/purposes.h"
#include "report/analyze/suppress.h"
#include "report/analyze/symbolize.h"
#include "report/read/trace_reader.h"

_Static_assert(VSP_READER_MAX_FRAMES == VSP_MAX_DEPTH, "the reader's stack limit is the shim's");

#define VERSION "0.1.0"

enum { FMT_TEXT, FMT_JSON, FMT_FOLDED, FMT_PERFETTO, FMT_SVG, FMT_JUNIT };

struct opts {
    int json;
    int fmt;
    int weigh;
    const char *suppress, *output, *purposes;
    uint64_t min_leak;
    unsigned fail_mask;
    unsigned fail_named;   /* the --fail-on kinds named one by one (not through "any") */
    int run_status;        /* --run-status N: what vramspy run returns without a --fail-on finding (-1: not
                              under vramspy run) */
    int run_error_exitcode; /* --run-error-exitcode N: what it returns with one */
    const char *sysroot, *debug_dir;
    struct vsp_analyze_opts an;
    int color;
    int strict;        /* --strict: findings marked uncertain count for --fail-on too */
    int check_only;    /* --check-options */
    int weigh_given;
    const char *plan;  /* --plan FILE */
    int job;           /* --job: the traces are one job's processes, one document */
    const char *holders[16]; /* --holders FILE (repeatable): rules tried before the shipped ones */
    int nholders;
    int no_default_holders;  /* --no-default-holders */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vramspy-report [options] TRACE...\n"
            "  --format FORMAT        text (default), json, folded (flame graph stacks), perfetto\n"
            "                         (Chrome trace-event JSON), svg (timeline picture), junit (XML)\n"
            "  --fail-on KINDS        exit 1 when a finding of these kinds exists: comma-separated\n"
            "                         leak, host-fallback, fragmentation, oom, invalid-free, peak, crash,\n"
            "                         alloc-error, untracked, plan, cached, growth, or any\n"
            "  --strict               --fail-on counts findings marked uncertain (events were lost) too\n"
            "  --weigh WHAT           folded: leaks (bytes live at the end, default), peak (bytes live\n"
            "                         at the device peak) or allocated (all bytes ever allocated)\n"
            "  --suppress FILE        drop findings matching a JSON list of {kind, function, module} rules\n"
            "  --holders FILE         add holder rules: a JSON list of {held_by, function, module, file,\n"
            "                         source}; memory live at the end that a framework holds on purpose is\n"
            "                         'cached', not 'leak' (repeatable; tried before the shipped rules)\n"
            "  --no-default-holders   do not load the shipped holder rules (built in; share/vramspy/\n"
            "                         holders.json or holders.json beside this binary replaces them)\n"
            "  --growth-min SIZE      a 'growth' finding when a call site's live bytes keep reaching new\n"
            "                         highs through the second half of the run and rise at least SIZE\n"
            "                         from half-time to the end (default 32MiB)\n"
            "  --max-peak SIZE        a 'peak' finding when device memory peaks above SIZE\n"
            "  --untracked-min SIZE   an 'untracked' finding when the process holds more than SIZE of\n"
            "                         device memory that no hook saw (default 256MiB)\n"
            "  --min-leak SIZE        ignore leaks smaller than SIZE (sizes: bytes, KiB/MiB/GiB, KB/MB/GB,\n"
            "                         decimals allowed: 1.5GiB)\n"
            "  --purposes FILE        label bytes by purpose: a JSON object from label to function/module globs\n"
            "  --plan FILE            measure against a memory plan: expected sizes by purpose (weights,\n"
            "                         kv_cache, activations, overhead, total) or a model (Hugging Face\n"
            "                         config.json and run parameters); a 'plan' finding outside tolerance\n"
            "  --job                  the traces are one job's processes: one document (JSON schema\n"
            "                         vramspy-job/1, text per device and rank, one SVG, JUnit per process)\n"
            "  -o, --output FILE      write the report to FILE instead of stdout\n"
            "  --sysroot DIR          find the traced process's binaries under DIR\n"
            "  --debug-dir DIR        find binaries (by name) and debug files (by build-id) in DIR\n"
            "  --fallback-window MS   a host allocation this soon after a device out-of-memory on the\n"
            "                         same thread is marked after_oom (default 5000)\n"
            "  --signal PID=N         the process PID ended by signal N (a crash finding)\n"
            "  --check-options        validate the options, read no trace, exit 0 or 2\n"
            "  --help, --version\n"
            "exit status: 0 no finding of a --fail-on kind, 1 at least one, 2 usage error or bad input\n");
}

/* --fail-on KINDS into *mask; *named gets the kinds named one by one (not through "any"). */
static int parse_fail_on(const char *s, unsigned *mask, unsigned *named)
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
                *named |= 1u << k;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "vramspy-report: --fail-on: unknown kind '%s' (leak, host-fallback, fragmentation, "
                            "oom, invalid-free, peak, crash, alloc-error, untracked, plan, cached, growth, any)\n",
                    tok);
            ok = 0;
        }
    }
    free(dup);
    return ok ? 0 : -1;
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* --check-options: can FILE be written, without creating or truncating anything? 0, or -errno. */
static int output_writable(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        return -errno;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!is_dir(dir))
        return -ENOENT;
    return access(dir, W_OK | X_OK) == 0 ? 0 : -errno;
}

/* Two paths name one file (device and inode). */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* --signal PID=N */
static int parse_signal(const char *s, uint32_t *pid, int *sig)
{
    char *end;
    errno = 0;
    unsigned long p = strtoul(s, &end, 10);
    if (errno || end == s || *end != '=' || !p || p > UINT32_MAX)
        return -1;
    const char *n = end + 1;
    unsigned long v = strtoul(n, &end, 10);
    if (errno || end == n || *end || v < 1 || v > 64)
        return -1;
    *pid = (uint32_t)p;
    *sig = (int)v;
    return 0;
}

/* The text report's last line: findings by kind, and the exit status they imply. */
static void text_summary(FILE *out, const uint64_t *by_kind, uint64_t uncertain, const struct opts *o, int failing)
{
    fprintf(out, "\nsummary: ");
    int any = 0;
    for (int k = 0; k < VSP_F_COUNT_; k++) {
        if (!by_kind[k])
            continue;
        fprintf(out, "%s%llu %s", any ? ", " : "", (unsigned long long)by_kind[k], vsp_finding_json_name(k));
        any = 1;
    }
    if (!any)
        fprintf(out, "no findings");
    if (uncertain)
        fprintf(out, " (%llu uncertain%s)", (unsigned long long)uncertain,
                o->strict ? "" : ", not counted by --fail-on without --strict");
    /* under vramspy run the status it returns: the program's own, or --error-exitcode's on a finding */
    int under_run = o->run_status >= 0;
    int status = under_run ? (failing ? o->run_error_exitcode : o->run_status) : failing;
    const char *own = under_run && !failing ? "the program's own; " : "";
    if (!o->fail_mask) {
        fprintf(out, "; exit status %d (%sno --fail-on)\n", status, own);
        return;
    }
    fprintf(out, "; exit status %d (%s--fail-on ", status, own);
    if (o->fail_mask == (1u << VSP_F_COUNT_) - 1) {
        fprintf(out, "any");
    } else {
        int first = 1;
        for (int k = 0; k < VSP_F_COUNT_; k++)
            if (o->fail_mask & (1u << k)) {
                fprintf(out, "%s%s", first ? "" : ",", vsp_finding_cli_name(k));
                first = 0;
            }
    }
    fprintf(out, "%s)\n", o->strict ? ", --strict" : "");
}

/* The vramspy-report/1 document, with the plan's comparison when there is one. */
static json_t *report_json(const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym)
{
    json_t *r = vsp_report_json(path, a, sym);
    if (a->plan)
        json_object_set_new(r, "plan", vsp_plan_json(a->plan));
    return r;
}

static const char *const format_names[] = {"text", "json", "folded", "perfetto", "svg", "junit"};

int main(int argc, char **argv)
{
    struct opts o = {.an.fallback_window_ns = 5000000000ull, .run_status = -1, .run_error_exitcode = 1};
    /* from 256: apart from the short options, so getopt's optopt tells a missing value */
    enum { OPT_FORMAT = 256, OPT_FAIL, OPT_SYSROOT, OPT_DEBUG, OPT_WINDOW, OPT_HELP, OPT_VERSION, OPT_WEIGH,
           OPT_SUPPRESS, OPT_MAXPEAK, OPT_MINLEAK, OPT_PURPOSES, OPT_STRICT, OPT_SIGNAL, OPT_CHECK,
           OPT_UNTRACKED, OPT_PLAN, OPT_JOB, OPT_RUN_STATUS, OPT_RUN_ERROR, OPT_HOLDERS, OPT_NO_DEFAULT_HOLDERS,
           OPT_GROWTH_MIN };
    static const struct option lo[] = {
        {"format", required_argument, NULL, OPT_FORMAT}, {"fail-on", required_argument, NULL, OPT_FAIL},
        {"weigh", required_argument, NULL, OPT_WEIGH}, {"suppress", required_argument, NULL, OPT_SUPPRESS},
        {"max-peak", required_argument, NULL, OPT_MAXPEAK}, {"min-leak", required_argument, NULL, OPT_MINLEAK},
        {"output", required_argument, NULL, 'o'}, {"purposes", required_argument, NULL, OPT_PURPOSES},
        {"sysroot", required_argument, NULL, OPT_SYSROOT}, {"debug-dir", required_argument, NULL, OPT_DEBUG},
        {"fallback-window", required_argument, NULL, OPT_WINDOW}, {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION}, {"strict", no_argument, NULL, OPT_STRICT},
        {"signal", required_argument, NULL, OPT_SIGNAL}, {"check-options", no_argument, NULL, OPT_CHECK},
        {"untracked-min", required_argument, NULL, OPT_UNTRACKED},
        {"plan", required_argument, NULL, OPT_PLAN}, {"job", no_argument, NULL, OPT_JOB},
        {"run-status", required_argument, NULL, OPT_RUN_STATUS},
        {"run-error-exitcode", required_argument, NULL, OPT_RUN_ERROR},
        {"holders", required_argument, NULL, OPT_HOLDERS},
        {"no-default-holders", no_argument, NULL, OPT_NO_DEFAULT_HOLDERS},
        {"growth-min", required_argument, NULL, OPT_GROWTH_MIN},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT: {
            o.fmt = -1;
            for (int k = 0; k < 6; k++)
                if (!strcmp(optarg, format_names[k]))
                    o.fmt = k;
            if (o.fmt < 0) {
                fprintf(stderr, "vramspy-report: --format: unknown format '%s' (text, json, folded, perfetto, svg, "
                                "junit)\n", optarg);
                return 2;
            }
            break;
        }
        case OPT_WEIGH:
            o.weigh_given = 1;
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
        case OPT_PLAN: o.plan = optarg; break;
        case OPT_JOB: o.job = 1; break;
        case OPT_HOLDERS:
            if (o.nholders == (int)(sizeof o.holders / sizeof o.holders[0])) {
                fprintf(stderr, "vramspy-report: --holders: at most %zu files\n", sizeof o.holders / sizeof o.holders[0]);
                return 2;
            }
            o.holders[o.nholders++] = optarg;
            break;
        case OPT_NO_DEFAULT_HOLDERS: o.no_default_holders = 1; break;
        case 'o': o.output = optarg; break;
        case OPT_MAXPEAK:
        case OPT_MINLEAK:
        case OPT_GROWTH_MIN:
        case OPT_UNTRACKED: {
            uint64_t v;
            if (vsp_report_parse_size(optarg, &v) < 0) {
                fprintf(stderr, "vramspy-report: %s: not a size: '%s' (bytes, or with KiB/MiB/GiB or KB/MB/GB; "
                                "decimals allowed: 1.5GiB)\n",
                        c == OPT_MAXPEAK ? "--max-peak" : c == OPT_MINLEAK ? "--min-leak"
                                                        : c == OPT_GROWTH_MIN ? "--growth-min" : "--untracked-min",
                        optarg);
                return 2;
            }
            if (c == OPT_GROWTH_MIN) {
                o.an.growth_min = v ? v : 1; /* 0 would mean the default */
                break;
            }
            if (c == OPT_UNTRACKED) {
                o.an.untracked_min = v ? v : 1; /* 0 would mean the default: any gap at all is 1 byte */
                break;
            }
            if (c == OPT_MAXPEAK && v == 0) {
                fprintf(stderr, "vramspy-report: --max-peak: the budget must be above 0 bytes\n");
                return 2;
            }
            if (c == OPT_MAXPEAK)
                o.an.max_peak = v;
            else
                o.min_leak = v;
            break;
        }
        case OPT_FAIL:
            if (parse_fail_on(optarg, &o.fail_mask, &o.fail_named) < 0)
                return 2;
            break;
        case OPT_RUN_STATUS:
        case OPT_RUN_ERROR: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 0 || v > 255) {
                fprintf(stderr, "vramspy-report: %s: not an exit status from 0 to 255: '%s'\n",
                        c == OPT_RUN_STATUS ? "--run-status" : "--run-error-exitcode", optarg);
                return 2;
            }
            if (c == OPT_RUN_STATUS)
                o.run_status = (int)v;
            else
                o.run_error_exitcode = (int)v;
            break;
        }
        case OPT_SYSROOT: o.sysroot = optarg; break;
        case OPT_DEBUG: o.debug_dir = optarg; break;
        case OPT_WINDOW: {
            char *end;
            errno = 0;
            unsigned long long ms = strtoull(optarg, &end, 10);
            if (errno || *end || end == optarg || optarg[0] == '-' || ms > UINT64_MAX / 1000000ull) {
                fprintf(stderr, "vramspy-report: --fallback-window: not a number of milliseconds: '%s'\n", optarg);
                return 2;
            }
            o.an.fallback_window_ns = ms * 1000000ull;
            break;
        }
        case OPT_STRICT: o.strict = 1; break;
        case OPT_SIGNAL:
            if (parse_signal(optarg, &o.an.signal_pid, &o.an.signal) < 0) {
                fprintf(stderr, "vramspy-report: --signal: '%s' is not PID=N (a process id and a signal number "
                                "1-64)\n", optarg);
                return 2;
            }
            break;
        case OPT_CHECK: o.check_only = 1; break;
        case 'h':
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("vramspy-report %s (trace format %u)\n", VERSION, VSP_TRACE_VERSION); return 0;
        default:
            /* one line (the usage is --help's): an option of ours given without its value (getopt
             * reports a long one by its code, a short one by its letter), or an unknown option */
            if (optopt == 'o' || optopt > 255)
                fprintf(stderr, "vramspy-report: option '%s' needs a value (see --help)\n", argv[optind - 1]);
            else
                fprintf(stderr, "vramspy-report: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    /* combinations, and what does not apply to the chosen format */
    if (o.weigh_given && o.fmt != FMT_FOLDED) {
        fprintf(stderr, "vramspy-report: --weigh applies to --format folded only (not %s)\n", format_names[o.fmt]);
        return 2;
    }
    if (o.purposes && o.fmt != FMT_TEXT && o.fmt != FMT_JSON) {
        fprintf(stderr, "vramspy-report: --purposes applies to --format text and json only (not %s)\n",
                format_names[o.fmt]);
        return 2;
    }
    if (o.plan && (o.fmt == FMT_FOLDED || o.fmt == FMT_PERFETTO)) {
        fprintf(stderr, "vramspy-report: --plan applies to --format text, json, svg and junit (not %s)\n",
                format_names[o.fmt]);
        return 2;
    }
    if (o.job && (o.fmt == FMT_FOLDED || o.fmt == FMT_PERFETTO)) {
        fprintf(stderr, "vramspy-report: --job applies to --format text, json, svg and junit (not %s)\n",
                format_names[o.fmt]);
        return 2;
    }
    /* a gate that can never close is a usage error, not a silent pass */
    if ((o.fail_named & (1u << VSP_F_PLAN)) && !o.plan) {
        fprintf(stderr, "vramspy-report: --fail-on plan needs --plan FILE (without a plan there is nothing to "
                        "fail on)\n");
        return 2;
    }
    if ((o.fail_named & (1u << VSP_F_PEAK)) && !o.an.max_peak) {
        fprintf(stderr, "vramspy-report: --fail-on peak needs --max-peak SIZE (without a budget there is nothing "
                        "to fail on)\n");
        return 2;
    }
    if (o.sysroot && !is_dir(o.sysroot)) {
        fprintf(stderr, "vramspy-report: --sysroot %s: %s\n", o.sysroot,
                access(o.sysroot, F_OK) == 0 ? "not a directory" : strerror(errno));
        return 2;
    }
    if (o.debug_dir && !is_dir(o.debug_dir)) {
        fprintf(stderr, "vramspy-report: --debug-dir %s: %s\n", o.debug_dir,
                access(o.debug_dir, F_OK) == 0 ? "not a directory" : strerror(errno));
        return 2;
    }
    if (optind >= argc && !o.check_only) {
        fprintf(stderr, "vramspy-report: no trace given (see --help)\n");
        return 2;
    }
    o.json = o.fmt == FMT_JSON;
    o.an.live_at_peak = o.fmt == FMT_FOLDED && o.weigh == VSP_WEIGH_PEAK;
    static struct vsp_purposes purposes;
    if (o.purposes) {
        char err[300];
        FILE *pf = vsp_input_open(o.purposes);
        static char text[65536];
        int open_errno = errno;
        size_t n = pf ? fread(text, 1, sizeof text - 1, pf) : 0;
        if (pf)
            fclose(pf);
        text[n] = 0;
        if (!pf || n == sizeof text - 1 || vsp_purposes_parse(text, &purposes, err, sizeof err) < 0) {
            if (!pf)
                fprintf(stderr, "vramspy-report: --purposes: cannot open %s: %s\n", o.purposes, strerror(open_errno));
            else
                fprintf(stderr, "vramspy-report: --purposes %s: %s\n", o.purposes,
                        n == sizeof text - 1 ? "larger than 64 KiB" : err);
            return 2;
        }
        o.an.live_at_peak = 1;
    }
    static struct vsp_plan plan;
    if (o.plan) {
        char err[600];
        if (vsp_plan_load(o.plan, &plan, err, sizeof err) < 0) {
            fprintf(stderr, "vramspy-report: --plan %s: %s\n", o.plan, err);
            return 2;
        }
        o.an.live_at_peak = 1; /* bytes by purpose at the device peak */
    }
    struct vsp_rules *rules = NULL;
    if (o.suppress) {
        char err[1200];
        rules = vsp_rules_load(o.suppress, err, sizeof err);
        if (!rules) {
            fprintf(stderr, "vramspy-report: --suppress: %s\n", err);
            return 2;
        }
    }
    struct vsp_holders *holders = NULL;
    for (int h = 0; h < o.nholders; h++) {
        char err[1200];
        if (vsp_holders_load(&holders, o.holders[h], err, sizeof err) < 0) {
            fprintf(stderr, "vramspy-report: --holders: %s\n", err);
            return 2;
        }
    }
    if (!o.no_default_holders) {
        /* An installed file replaces the built-in copy (a packager's rules); without one the
         * built-in rules still apply: a report copied alone once ran with none and turned every
         * framework's cache into leaks. A file that is there but bad is an error, never skipped. */
        char path[PATH_MAX], err[1200];
        int rc = vsp_holders_default_path(argv[0], path, sizeof path) == 0
                     ? vsp_holders_load(&holders, path, err, sizeof err)
                     : vsp_holders_load_builtin(&holders, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "vramspy-report: the shipped holder rules: %s\n", err);
            vsp_rules_free(rules);
            vsp_holders_free(holders);
            return 2;
        }
    }
    if (o.check_only) {
        int rc = o.output ? output_writable(o.output) : 0;
        vsp_rules_free(rules);
        vsp_holders_free(holders);
        if (rc < 0) {
            fprintf(stderr, "vramspy-report: --output %s: %s\n", o.output, strerror(-rc));
            return 2;
        }
        return 0;
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
    /* a job counts each process once: the same trace given twice (or a copy of it) is one */
    const char **paths = calloc((size_t)ntr + 1, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "vramspy-report: out of memory\n");
        return 2;
    }
    int nkept = 0;
    for (int i = 0; i < ntr; i++) {
        int dup = -1;
        for (int j = 0; o.job && j < nkept && dup < 0; j++)
            if (vsp_job_same_process(&as[j], &as[i]) || same_file(paths[j], argv[optind + i]))
                dup = j;
        if (dup >= 0) {
            fprintf(stderr, "vramspy-report: %s is the process of %s again (pid %u%s%s): counted once\n",
                    argv[optind + i], paths[dup], as[i].pid, as[i].host ? " on " : "", as[i].host ? as[i].host : "");
            vsp_analysis_free(&as[i]);
            continue;
        }
        if (nkept != i) {
            as[nkept] = as[i];
            memset(&as[i], 0, sizeof as[i]);
        }
        paths[nkept++] = argv[optind + i];
    }
    ntr = nkept;
    int failing = 0;
    uint64_t fail_by_kind[VSP_F_COUNT_] = {0};
    uint64_t by_kind[VSP_F_COUNT_] = {0}, uncertain = 0;
    json_t *all = o.json && ntr > 1 && !o.job ? json_array() : NULL;
    struct vsp_job_proc *jp = o.job ? calloc((size_t)ntr, sizeof *jp) : NULL;
    if (o.job && !jp) {
        fprintf(stderr, "vramspy-report: out of memory\n");
        return 2;
    }
    if (o.fmt == FMT_PERFETTO)
        vsp_perfetto_begin(out);
    else if (o.fmt == FMT_SVG)
        vsp_svg_begin(out, ntr);
    else if (o.fmt == FMT_JUNIT)
        vsp_junit_begin(out);
    for (int i = 0; i < ntr; i++) {
        const char *path = paths[i];
        struct vsp_symbolizer *sym = vsp_sym_new(&as[i], o.sysroot, o.debug_dir);
        vsp_sym_merge_python(sym, &as[i]);
        vsp_apply_holders(&as[i], holders, sym);
        vsp_apply_suppressions(&as[i], rules, o.min_leak, sym);
        vsp_purpose_breakdown(&as[i], o.purposes ? &purposes : NULL, sym);
        if (o.plan && vsp_plan_apply(&plan, &as[i]) < 0) {
            fprintf(stderr, "vramspy-report: %s: out of memory comparing with the plan\n", path);
            return 2;
        }
        for (size_t k = 0; k < as[i].nfindings; k++) {
            const struct vsp_finding *f = &as[i].findings[k];
            by_kind[f->kind]++;
            if (f->uncertain)
                uncertain++;
            if ((o.fail_mask & (1u << f->kind)) && (!f->uncertain || o.strict)) {
                failing = 1;
                fail_by_kind[f->kind]++;
            }
        }
        if (o.job && (o.fmt == FMT_JSON || o.fmt == FMT_TEXT)) {
            /* the job's document is written once every process is in */
            jp[i].path = path;
            jp[i].a = &as[i];
            jp[i].report = report_json(path, &as[i], sym);
            vsp_sym_free(sym);
            continue;
        }
        switch (o.fmt) {
        case FMT_JSON: {
            json_t *r = report_json(path, &as[i], sym);
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
            if (as[i].plan)
                vsp_plan_text(out, as[i].plan);
            break;
        case FMT_FOLDED: vsp_folded(out, &as[i], sym, o.weigh); break;
        case FMT_PERFETTO: vsp_perfetto_trace(out, &as[i], i == 0); break;
        case FMT_SVG: vsp_svg_trace(out, path, &as[i], i); break;
        case FMT_JUNIT: {
            struct vsp_junit_opts jo = {.fail_mask = o.fail_mask, .max_peak = o.an.max_peak, .strict = o.strict};
            vsp_junit_trace_opts(out, path, &as[i], sym, &jo);
            break;
        }
        }
        vsp_sym_free(sym);
        vsp_analysis_free(&as[i]);
    }
    if (o.job && (o.fmt == FMT_JSON || o.fmt == FMT_TEXT)) {
        if (o.fmt == FMT_JSON) {
            json_t *doc = vsp_job_json(jp, (size_t)ntr);
            json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', out);
            json_decref(doc);
        } else {
            vsp_job_text(out, jp, (size_t)ntr, o.color);
        }
        for (int i = 0; i < ntr; i++) {
            json_decref(jp[i].report);
            vsp_analysis_free(&as[i]);
        }
    }
    free(jp);
    if (o.fmt == FMT_TEXT)
        text_summary(out, by_kind, uncertain, &o, failing);
    /* the verdict in the log too when the report itself goes to a file (-o): one line per kind
     * that fails the run */
    for (int k = 0; k < VSP_F_COUNT_ && o.output; k++)
        if (fail_by_kind[k])
            fprintf(stderr, "vramspy-report: --fail-on %s: %llu %s finding%s\n", vsp_finding_cli_name(k),
                    (unsigned long long)fail_by_kind[k], vsp_finding_json_name(k), fail_by_kind[k] == 1 ? "" : "s");
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
    vsp_holders_free(holders);
    free(as);
    free(paths);
    const char *stats = getenv("VRAMSPY_REPORT_STATS");
    if (stats && *stats && strcmp(stats, "0"))
        fprintf(stderr, "vramspy-report: stats: site-name work %llu\n", (unsigned long long)vsp_site_work());
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "vramspy-report: writing the report failed: %s\n", strerror(errno));
        return 2;
    }
    return failing ? 1 : 0;
}
