/* vramspy: the front-end.
 *   vramspy run [--out DIR] [--fail-on KINDS] [--error-exitcode N] [report options] -- PROGRAM [ARGS...]
 *     runs PROGRAM with libvramspy.so preloaded (found beside this binary, or in ../lib after
 *     make install), stdin/stdout/stderr untouched and signals passed on, then prints the report
 *     of every trace the run produced (children included) on stderr. Exit status: the program's
 *     own (128+N when signal N killed it), or --error-exitcode (default 1) when a --fail-on kind
 *     was found.
 *   vramspy report ...   the analyzer (vramspy-report).
 * Interface: README.md and vramspy(1). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
            "  --fail-on KINDS      leak, host-fallback, fragmentation, oom, invalid-free, peak, any\n"
            "  --error-exitcode N   exit status when a --fail-on kind is found (default 1)\n"
            "  other options (--format, --suppress, --max-peak, --min-leak, --sysroot, ...) go to the report\n"
            "exit status: the program's own (128+N if signal N killed it), or N from --error-exitcode\n"
            "when a --fail-on finding exists; 2 for a usage error\n");
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

static int run(int argc, char **argv)
{
    const char *out = NULL, *fail_on = NULL;
    int error_exitcode = 1;
    char **ropts = calloc((size_t)argc + 8, sizeof *ropts);
    int nr = 0, i;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
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
            break; /* the program, without a "--" */
        }
        /* a report option, with its value when it takes one */
        ropts[nr++] = argv[i];
        if (!strchr(a, '=') && i + 1 < argc && strcmp(argv[i + 1], "--") &&
            (!strcmp(a, "--format") || !strcmp(a, "--suppress") || !strcmp(a, "--max-peak") ||
             !strcmp(a, "--min-leak") || !strcmp(a, "--sysroot") || !strcmp(a, "--debug-dir") ||
             !strcmp(a, "--fallback-window") || !strcmp(a, "--weigh") || !strcmp(a, "--output") ||
             !strcmp(a, "--purposes") || !strcmp(a, "-o")))
            ropts[nr++] = argv[++i];
    }
    if (i >= argc) {
        fprintf(stderr, "vramspy run: no program given\n");
        usage(stderr);
        return 2;
    }
    char **prog = &argv[i];
    char shim[PATH_MAX], report[PATH_MAX];
    if (find_beside("libvramspy.so", "lib", shim, sizeof shim) < 0) {
        fprintf(stderr, "vramspy run: cannot find libvramspy.so beside %s or in ../lib\n", "vramspy");
        return 2;
    }
    if (find_beside("vramspy-report", "bin", report, sizeof report) < 0) {
        fprintf(stderr, "vramspy run: cannot find vramspy-report beside vramspy\n");
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
    char preload[PATH_MAX * 2 + 32], pattern[PATH_MAX + 64];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", shim);
    snprintf(pattern, sizeof pattern, "%s/vramspy.%%e.%%p.trace", dir);
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    /* Like system(): the terminal's Ctrl-C / Ctrl-\ reach the program directly (same process
     * group); we outlive them to report. Other termination signals sent to us are passed on. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    sigaction(SIGUSR1, &fwd, NULL);
    sigaction(SIGUSR2, &fwd, NULL);
    child_pid = fork();
    if (child_pid < 0) {
        fprintf(stderr, "vramspy run: fork: %s\n", strerror(errno));
        return 2;
    }
    if (child_pid == 0) {
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
        fprintf(stderr, "vramspy run: %s: %s\n", prog[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    int st;
    while (waitpid(child_pid, &st, 0) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
    /* The traces of this run: every trace file in dir written since we started. */
    DIR *d = opendir(dir);
    char **traces = NULL;
    size_t nt = 0, capt = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, "vramspy.", 8) || !strstr(de->d_name, ".trace"))
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_mtim.tv_sec < start.tv_sec)
            continue;
        if (nt == capt) {
            capt = capt ? capt * 2 : 16;
            traces = realloc(traces, capt * sizeof *traces);
        }
        traces[nt++] = strdup(p);
    }
    if (d)
        closedir(d);
    if (!nt) {
        fprintf(stderr, "vramspy: %s made no CUDA allocation call: nothing was traced\n", prog[0]);
        return status;
    }
    qsort(traces, nt, sizeof *traces, cmp_str);
    fprintf(stderr, "vramspy: %zu trace%s in %s\n", nt, nt == 1 ? "" : "s", dir);
    char **rargv = calloc(nt + (size_t)nr + 8, sizeof *rargv);
    int k = 0;
    rargv[k++] = report;
    if (fail_on) {
        rargv[k++] = "--fail-on";
        rargv[k++] = (char *)fail_on;
    }
    for (int j = 0; j < nr; j++)
        rargv[k++] = ropts[j];
    rargv[k++] = "--";
    for (size_t j = 0; j < nt; j++)
        rargv[k++] = traces[j];
    pid_t rp = fork();
    if (rp == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* the report goes to stderr: stdout is the program's */
        unsetenv("LD_PRELOAD");
        execv(report, rargv);
        _exit(2);
    }
    int rst;
    while (waitpid(rp, &rst, 0) < 0 && errno == EINTR) {
    }
    int rc = WIFEXITED(rst) ? WEXITSTATUS(rst) : 2;
    if (rc == 1)
        return error_exitcode;
    if (rc != 0)
        fprintf(stderr, "vramspy: the report failed (status %d); the program's own status is kept\n", rc);
    return status;
}

int main(int argc, char **argv)
{
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
