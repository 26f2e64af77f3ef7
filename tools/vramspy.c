/* vramspy: the front-end.
 *   vramspy run [--out DIR] [--fail-on KINDS] [--error-exitcode N] [report options] -- PROGRAM [ARGS...]
 *     runs PROGRAM with libvramspy.so preloaded (found beside this binary, or in ../lib after
 *     make install), stdin/stdout/stderr untouched and signals passed on, then prints the report
 *     of every trace the run produced (children included) on stderr. Exit status: the program's
 *     own (128+N when signal N killed it), or --error-exitcode (default 1) when a --fail-on kind
 *     was found.
 *   vramspy report ...   the analyzer (vramspy-report).
 * It must never let a gate open silently: every option, its own and the report's, is checked
 * (vramspy-report --check-options) before the program starts, and a report that fails after the
 * run never yields a success status.
 * Interface: README.md and vramspy(1). */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "0.1.0"

static pid_t child_pid;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vramspy run [--out DIR] [--fail-on KINDS] [--error-exitcode N] [report options] -- PROGRAM [ARGS...]\n"
            "       vramspy report [options] TRACE...      (the analyzer: vramspy-report --help)\n"
            "       vramspy top [--once] TRACE              (live view of a trace being written; q quits)\n"
            "       vramspy --help | --version\n"
            "run options:\n"
            "  --out DIR            keep the traces in DIR (created if missing); default: a new\n"
            "                       directory vramspy-run.XXXXXX under $TMPDIR (or /tmp)\n"
            "  --fail-on KINDS      leak, host-fallback, fragmentation, oom, invalid-free, peak, crash,\n"
            "                       alloc-error, untracked, plan, cached, growth, any\n"
            "  --error-exitcode N   exit status when a --fail-on kind is found (default 1)\n"
            "  --plan FILE          measure the run against a memory plan (checked before the start)\n"
            "  --no-job             several traces: one report each, not one job document (--job is the\n"
            "                       default when the run leaves several traces)\n"
            "  other options (--format, --suppress, --holders, --growth-min, --max-peak, --min-leak,\n"
            "  --strict, --sysroot, ...) go to\n"
            "  the report; all are checked before the program starts\n"
            "exit status: the program's own (128+N if signal N killed it; 127 not found, 126 not\n"
            "executable: it could not be started), or N from --error-exitcode\n"
            "when a --fail-on finding exists or the report fails; 2 for a usage error (the program is\n"
            "not started) or a failed report without --fail-on\n");
}

/* Directory of this executable. */
static int self_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = 0;
    return 0;
}

/* A file beside us (build tree) or in ../REL (installed). */
static int find_beside(const char *name, const char *installed_rel, char *out, size_t len)
{
    char dir[PATH_MAX], cand[PATH_MAX + 64];
    if (self_dir(dir, sizeof dir) < 0)
        return -1;
    snprintf(cand, sizeof cand, "%s/%s", dir, name);
    if (access(cand, R_OK) != 0)
        snprintf(cand, sizeof cand, "%s/../%s/%s", dir, installed_rel, name);
    if (access(cand, R_OK) != 0)
        return -1;
    if (!realpath(cand, out))
        return -1;
    (void)len;
    return 0;
}

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Report options that take a value as the next argument (vramspy-report's getopt_long names). */
static int report_option_takes_value(const char *a)
{
    static const char *const with_value[] = {"--format",  "--suppress",        "--max-peak", "--min-leak",
                                             "--sysroot", "--debug-dir",       "--weigh",    "--output",
                                             "--purposes", "--fallback-window", "--signal",  "--untracked-min",
                                             "--plan", "--holders", "--growth-min", "-o"};
    if (strchr(a, '='))
        return 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (!strcmp(a, with_value[k]))
            return 1;
    return 0;
}

/* Options of vramspy run and of the report that a program rarely has: seen after the program's
 * name, they are the program's arguments, which is seldom what was meant. */
static void warn_misplaced_options(char **prog)
{
    static const char *const ours[] = {"--fail-on", "--error-exitcode", "--out", "--no-job", "--max-peak",
                                       "--min-leak", "--plan", "--suppress", "--purposes", "--strict",
                                       "--untracked-min", "--fallback-window", "--sysroot", "--debug-dir",
                                       "--holders", "--no-default-holders", "--growth-min"};
    for (int j = 1; prog[j]; j++)
        for (size_t k = 0; k < sizeof ours / sizeof *ours; k++) {
            size_t n = strlen(ours[k]);
            if (!strncmp(prog[j], ours[k], n) && (prog[j][n] == 0 || prog[j][n] == '=')) {
                fprintf(stderr, "vramspy run: warning: '%s' comes after the program's name, so it is %s's "
                                "argument, not vramspy's (vramspy's options go before the program, or before "
                                "'--')\n", prog[j], prog[0]);
                break;
            }
        }
}

/* The report's inputs (--plan, --suppress, --purposes, --holders) are read before the run (the check) and
 * after it: a pipe or FIFO (a process substitution such as <(...)) would be empty the second time.
 * 0, or -1 after saying which input cannot be read twice. */
static int inputs_readable_twice(char **ropts, int nr)
{
    for (int j = 0; j < nr; j++) {
        const char *a = ropts[j], *path = NULL;
        static const char *const files[] = {"--plan", "--suppress", "--purposes", "--holders"};
        for (size_t k = 0; k < sizeof files / sizeof *files && !path; k++) {
            size_t n = strlen(files[k]);
            if (!strncmp(a, files[k], n) && a[n] == '=')
                path = a + n + 1;
            else if (!strcmp(a, files[k]) && j + 1 < nr)
                path = ropts[j + 1];
        }
        struct stat sb;
        if (path && stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "vramspy run: %s is not a regular file (a pipe, FIFO or device): vramspy run reads it "
                            "before the program starts and again after it ends; save it to a file first\n", path);
            return -1;
        }
    }
    return 0;
}

/* %: the shim's escape in VRAMSPY_OUT (%p, %e, %%): a directory's own % doubled, into out. */
static void escape_percent(char *out, size_t len, const char *dir)
{
    size_t n = 0;
    for (; *dir && n + 2 < len; dir++) {
        if (*dir == '%')
            out[n++] = '%';
        out[n++] = *dir;
    }
    out[n] = 0;
}

/* A sanitizer runtime preloaded for the program (LD_PRELOAD=libasan.so vramspy run ...) loads into
 * the front end too, and its LeakSanitizer would judge the front end at exit: what it finds there
 * (buffers a short-lived command never frees) would turn the program's success into exit 1. The
 * front end is not what the user asked it to check: leak checking is turned off for this process
 * only (the program and the report are other processes). A front end built with the sanitizer
 * itself (make SANITIZER=address) keeps it. */
static void front_end_leak_check_off(void)
{
#ifndef __SANITIZE_ADDRESS__
    void (*lsan_disable)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "__lsan_disable");
    if (lsan_disable)
        lsan_disable();
#endif
}

/* Run the report with argv (argv[0] its path), its stdout on our stderr (stdout is the program's).
 * Returns its exit status, or -1 when it did not exit (why: into why). */
static int run_report(char **rargv, char *why, size_t whylen)
{
    fflush(stderr);
    pid_t rp = fork();
    if (rp < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return -1;
    }
    if (rp == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        unsetenv("LD_PRELOAD");
        execv(rargv[0], rargv);
        fprintf(stderr, "vramspy: %s: %s\n", rargv[0], strerror(errno));
        _exit(127);
    }
    int rst;
    while (waitpid(rp, &rst, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(rst))
        return WEXITSTATUS(rst);
    snprintf(why, whylen, "killed by signal %d (%s)", WTERMSIG(rst), strsignal(WTERMSIG(rst)));
    return -1;
}

/* The trace files in dir (names, sorted). */
static size_t list_traces(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, "vramspy.", 8) || !strstr(de->d_name, ".trace"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(v, cap * sizeof *v);
            if (!grown)
                break;
            v = grown;
        }
        if (!(v[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    return n;
}

static int run(int argc, char **argv)
{
    const char *out = NULL, *fail_on = NULL;
    int error_exitcode = 1;
    int no_job = 0, job_given = 0;
    const char *format = "text";
    char **ropts = calloc((size_t)argc + 8, sizeof *ropts);
    int nr = 0, i;
    const char *stray = NULL; /* a word before "--" that followed an unknown option: its value */
    int after_unknown = 0;     /* the previous argument was an option the report does not know */
    if (!ropts)
        return 2;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        int follows_unknown = after_unknown;
        after_unknown = 0;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        const char *val = NULL;
        int takes = !strcmp(a, "--out") || !strcmp(a, "--fail-on") || !strcmp(a, "--error-exitcode");
        if (takes) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vramspy run: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
            if (!strncmp(val, "--", 2)) {
                /* "--out -- prog": the value was forgotten; a directory named "--" is not what was meant */
                fprintf(stderr, "vramspy run: %s needs a value (got '%s')\n", a, val);
                return 2;
            }
            if (!strcmp(a, "--out"))
                out = val;
            else if (!strcmp(a, "--fail-on"))
                fail_on = val;
            else {
                char *end;
                long n = strtol(val, &end, 10);
                if (*end || end == val || n < 0 || n > 255) {
                    fprintf(stderr, "vramspy run: --error-exitcode: not an exit status from 0 to 255: '%s'\n", val);
                    return 2;
                }
                error_exitcode = (int)n;
            }
            continue;
        }
        if (a[0] != '-') {
            int dashdash_later = 0;
            for (int j = i + 1; follows_unknown && j < argc && !dashdash_later; j++)
                dashdash_later = !strcmp(argv[j], "--");
            if (!dashdash_later)
                break; /* the program, without a "--" */
            if (!stray)
                stray = a; /* the program follows "--"; the check below names the unknown option */
            continue;
        }
        if (!strcmp(a, "--no-job")) {
            no_job = 1;
            continue;
        }
        if (!strcmp(a, "--job"))
            job_given = 1;
        if (!strncmp(a, "--format=", 9))
            format = a + 9;
        else if (!strcmp(a, "--format") && i + 1 < argc)
            format = argv[i + 1];
        if (!strncmp(a, "--check-options", 15) || !strncmp(a, "--signal", 8) || !strncmp(a, "--run-status", 12) ||
            !strncmp(a, "--run-error-exitcode", 20)) {
            fprintf(stderr, "vramspy run: %s is vramspy run's own to give the report\n", a);
            return 2;
        }
        /* a report option, with its value when it takes one */
        ropts[nr++] = argv[i];
        if (report_option_takes_value(a) && i + 1 < argc && strcmp(argv[i + 1], "--"))
            ropts[nr++] = argv[++i];
        else
            after_unknown = !strchr(a, '=') && strcmp(a, "--strict") && strcmp(a, "--job") && strcmp(a, "--version") &&
                            strcmp(a, "--no-default-holders");
    }
    if (i >= argc) {
        fprintf(stderr, "vramspy run: no program given\n");
        usage(stderr);
        return 2;
    }
    char **prog = &argv[i];
    warn_misplaced_options(prog);
    if (inputs_readable_twice(ropts, nr) < 0) {
        fprintf(stderr, "vramspy run: %s was not started\n", prog[0]);
        return 2;
    }
    char shim[PATH_MAX], report[PATH_MAX];
    if (find_beside("libvramspy.so", "lib", shim, sizeof shim) < 0) {
        fprintf(stderr, "vramspy run: cannot find libvramspy.so beside %s or in ../lib\n", "vramspy");
        return 2;
    }
    if (find_beside("vramspy-report", "bin", report, sizeof report) < 0) {
        fprintf(stderr, "vramspy run: cannot find vramspy-report beside vramspy\n");
        return 2;
    }
    /* The report's command line: the same for the check before the run and the report after it. */
    char **rargv = calloc((size_t)nr + 16, sizeof *rargv);
    if (!rargv)
        return 2;
    int k = 0;
    rargv[k++] = report;
    if (fail_on) {
        rargv[k++] = "--fail-on";
        rargv[k++] = (char *)fail_on;
    }
    for (int j = 0; j < nr; j++)
        rargv[k++] = ropts[j];
    /* The gate: the report's options are checked now, not after the program ran. --check-options
     * first, so that an option missing its value cannot swallow it. */
    {
        char **cargv = calloc((size_t)k + 2, sizeof *cargv);
        if (!cargv)
            return 2;
        cargv[0] = report;
        cargv[1] = "--check-options";
        memcpy(cargv + 2, rargv + 1, (size_t)(k - 1) * sizeof *cargv);
        char why[128] = "";
        int rc = run_report(cargv, why, sizeof why);
        free(cargv);
        if (rc != 0) {
            if (rc < 0)
                fprintf(stderr, "vramspy run: checking the report options failed: %s\n", why);
            fprintf(stderr, "vramspy run: bad report option (see above): %s was not started\n", prog[0]);
            return 2;
        }
    }
    if (stray) {
        fprintf(stderr, "vramspy run: '%s' before '--' is neither an option nor an option's value: %s was not started\n",
                stray, prog[0]);
        return 2;
    }
    char dir[PATH_MAX];
    if (out) {
        if (mkdir(out, 0700) < 0 && errno != EEXIST) {
            fprintf(stderr, "vramspy run: --out %s: %s\n", out, strerror(errno));
            return 2;
        }
        if (!realpath(out, dir)) {
            fprintf(stderr, "vramspy run: --out %s: %s\n", out, strerror(errno));
            return 2;
        }
        struct stat sb;
        if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) < 0) {
            fprintf(stderr, "vramspy run: --out %s: %s\n", out,
                    stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode) ? "not a directory" : strerror(errno));
            return 2;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vramspy-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "vramspy run: cannot create a trace directory: %s\n", strerror(errno));
            return 2;
        }
    }
    /* The environment: the shim added to LD_PRELOAD (after what is there: a sanitizer runtime or
     * another tool the user preloads keeps its place), traces into dir. */
    char preload[PATH_MAX * 2 + 32], pattern[PATH_MAX * 2 + 64];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", shim);
    char dir_escaped[PATH_MAX * 2];
    escape_percent(dir_escaped, sizeof dir_escaped, dir);
    snprintf(pattern, sizeof pattern, "%s/vramspy.%%e.%%p.trace", dir_escaped);
    /* Traces already in dir (an --out directory used before) are not this run's. */
    char **before = NULL;
    size_t nbefore = list_traces(dir, &before);
    /* Like system(): the terminal's Ctrl-C / Ctrl-\ reach the program directly (same process
     * group); we outlive them to report. Other termination signals sent to us are passed on. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    sigaction(SIGUSR1, &fwd, NULL);
    sigaction(SIGUSR2, &fwd, NULL);
    fflush(stderr);
    /* a close-on-exec pipe: the child writes its errno to it when the exec fails, so that a program
     * that could not be started is told apart from one that ran without CUDA */
    int execpipe[2];
    if (pipe2(execpipe, O_CLOEXEC) < 0) {
        fprintf(stderr, "vramspy run: pipe: %s\n", strerror(errno));
        return 2;
    }
    child_pid = fork();
    if (child_pid < 0) {
        fprintf(stderr, "vramspy run: fork: %s\n", strerror(errno));
        return 2;
    }
    if (child_pid == 0) {
        close(execpipe[0]);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        signal(SIGUSR2, SIG_DFL);
        setenv("LD_PRELOAD", preload, 1);
        setenv("VRAMSPY_OUT", pattern, 1);
        setenv("VRAMSPY_SUMMARY", "0", 0); /* the report follows; the shim's exit summary is redundant */
        execvp(prog[0], prog);
        int e = errno;
        if (write(execpipe[1], &e, sizeof e) < 0) {
            /* the parent then sees a status of 126 or 127 and no traces: still a failure */
        }
        _exit(e == ENOENT ? 127 : 126);
    }
    close(execpipe[1]);
    int exec_errno = 0;
    ssize_t got;
    while ((got = read(execpipe[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(execpipe[0]);
    if (got != (ssize_t)sizeof exec_errno)
        exec_errno = 0; /* EOF: the exec succeeded */
    pid_t prog_pid = child_pid;
    int st;
    while (waitpid(child_pid, &st, 0) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
    if (exec_errno) {
        /* as a shell says it: 127 when there is no such program, 126 when it cannot be run */
        fprintf(stderr, "vramspy run: %s could not be started: %s (exit status %d)\n", prog[0], strerror(exec_errno),
                status);
        if (!out)
            rmdir(dir);
        return status;
    }
    /* The traces of this run: every trace file in dir that was not there before. */
    char **names = NULL, **traces = NULL;
    size_t nn = list_traces(dir, &names), nt = 0;
    traces = calloc(nn ? nn : 1, sizeof *traces);
    for (size_t j = 0; traces && j < nn; j++) {
        if (nbefore && bsearch(&names[j], before, nbefore, sizeof *before, cmp_str))
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, names[j]);
        struct stat sb;
        if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        traces[nt++] = strdup(p);
    }
    if (!nt) {
        fprintf(stderr, "vramspy: %s made no CUDA allocation call: nothing was traced\n", prog[0]);
        if (!out)
            rmdir(dir); /* our own empty directory: nothing to keep */
        return status;
    }
    fprintf(stderr, "vramspy: %zu trace%s in %s\n", nt, nt == 1 ? "" : "s", dir);
    char **full = realloc(rargv, ((size_t)k + nt + 15) * sizeof *rargv);
    if (!full)
        return fail_on ? error_exitcode : 2;
    rargv = full;
    /* The program's death by a signal is known here only: the report makes it a crash finding. */
    char sigarg[64];
    if (WIFSIGNALED(st)) {
        snprintf(sigarg, sizeof sigarg, "%d=%d", (int)prog_pid, WTERMSIG(st));
        rargv[k++] = "--signal";
        rargv[k++] = sigarg;
    }
    /* What the run returns, for the report's summary line: the program's status, or
     * --error-exitcode's when a --fail-on finding fails it. */
    char run_status[16], run_error[16];
    snprintf(run_status, sizeof run_status, "%d", status);
    snprintf(run_error, sizeof run_error, "%d", error_exitcode);
    rargv[k++] = "--run-status";
    rargv[k++] = run_status;
    rargv[k++] = "--run-error-exitcode";
    rargv[k++] = run_error;
    /* The report's stdout is our stderr (stdout is the program's): a picture or a document there
     * would be mixed with the log. Without -o, a format other than text and json goes to a file
     * beside the traces. */
    char report_file[PATH_MAX + 64];
    int has_output = 0;
    for (int j = 0; j < nr; j++)
        has_output |= !strcmp(ropts[j], "-o") || !strcmp(ropts[j], "--output") || !strncmp(ropts[j], "--output=", 9) ||
                      (!strncmp(ropts[j], "-o", 2) && ropts[j][1] == 'o' && ropts[j][2]);
    if (!has_output && strcmp(format, "text") && strcmp(format, "json")) {
        snprintf(report_file, sizeof report_file, "%s/vramspy-report.%s", dir,
                 !strcmp(format, "junit") ? "xml" : !strcmp(format, "perfetto") ? "json" : format);
        rargv[k++] = "-o";
        rargv[k++] = report_file;
        fprintf(stderr, "vramspy: the %s report is in %s\n", format, report_file);
    }
    /* Several traces are one job (workers, ranks, children): one document, unless --no-job or a
     * format that has no job view. */
    if (nt > 1 && !no_job && !job_given &&
        (!strcmp(format, "text") || !strcmp(format, "json") || !strcmp(format, "svg") || !strcmp(format, "junit")))
        rargv[k++] = "--job";
    rargv[k++] = "--";
    for (size_t j = 0; j < nt; j++)
        rargv[k++] = traces[j];
    rargv[k] = NULL;
    char why[128] = "";
    int rc = run_report(rargv, why, sizeof why);
    if (rc == 1)
        return error_exitcode;
    if (rc != 0) {
        /* No verdict: never a success. With --fail-on the job's failure status, else a usage/file
         * error as vramspy-report gives it. */
        int ret = fail_on ? error_exitcode : 2;
        if (ret == 0)
            ret = 2; /* --error-exitcode 0 cannot turn a missing verdict into a pass */
        if (rc < 0)
            fprintf(stderr, "vramspy: the report %s; ", why);
        else
            fprintf(stderr, "vramspy: the report failed (status %d, reason above); ", rc);
        fprintf(stderr, "exit status %d instead of the program's %d: no verdict on this run (traces kept in %s)\n",
                ret, status, dir);
        return ret;
    }
    return status;
}

int main(int argc, char **argv)
{
    front_end_leak_check_off();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vramspy %s\n", VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "run"))
        return run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "top")) {
        extern int vsp_top_main(int argc, char **argv);
        return vsp_top_main(argc - 2, argv + 2);
    }
    if (!strcmp(argv[1], "report")) {
        char report[PATH_MAX];
        if (find_beside("vramspy-report", "bin", report, sizeof report) < 0) {
            fprintf(stderr, "vramspy: cannot find vramspy-report beside vramspy\n");
            return 2;
        }
        argv[1] = report;
        execv(report, argv + 1);
        fprintf(stderr, "vramspy: %s: %s\n", report, strerror(errno));
        return 2;
    }
    fprintf(stderr, "vramspy: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
