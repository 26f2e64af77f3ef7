/* vramspy top TRACE: a live view of a trace that is still being written — current and peak bytes
 * by memory kind, allocation rate, top live call sites — redrawn every second in a plain
 * terminal (ANSI clear and home only, so it works over ssh); q or Ctrl-C quits and restores the
 * terminal. --once prints one frame and exits (scripts, tests). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "analyze.h"
#include "output.h"
#include "symbolize.h"

static volatile sig_atomic_t quit;
static struct termios saved;
static int raw;

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static void restore_terminal(void)
{
    if (raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        raw = 0;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void frame(const char *path, const struct vsp_analysis *a, double rate, int clear, int live)
{
    char b1[32], b2[32];
    if (clear)
        fputs("\033[H\033[2J", stdout);
    else if (live)
        fputs("\n", stdout); /* frames one after another: a blank line between them */
    time_t t = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
    printf("vramspy top  %s  pid %u  %s  %s%s\n", path, a->pid, a->exe ? a->exe : "?", when,
           live ? "  (q quits)" : "");
    printf("trace: %s, %llu events\n\n", a->complete ? "finished" : "live", (unsigned long long)a->events);
    printf("%-16s %12s %12s\n", "memory", "current", "peak");
    for (int m = 1; m < VSP_MEM_COUNT_; m++) {
        if (m == VSP_MEM_MAPPING || (!a->kind_live[m] && !a->kind_peak[m]))
            continue;
        vsp_human_bytes(b1, sizeof b1, a->kind_live[m]);
        vsp_human_bytes(b2, sizeof b2, a->kind_peak[m]);
        printf("%-16s %12s %12s\n", vsp_memory_name((unsigned)m), b1, b2);
    }
    vsp_human_bytes(b2, sizeof b2, a->peak_bytes);
    printf("%-16s %12s %12s\n\n", "device total", "", b2);
    printf("allocations %llu (%.1f/s), frees %llu, failed %llu, live %llu\n\n", (unsigned long long)a->allocations,
           rate, (unsigned long long)a->frees, (unsigned long long)a->failed, (unsigned long long)a->live_allocations);
    printf("top live call sites:\n");
    struct vsp_symbolizer *sym = vsp_sym_new(a, NULL, NULL);
    int shown = 0;
    for (size_t i = 0; i < a->nfindings && shown < 10; i++) {
        const struct vsp_finding *f = &a->findings[i];
        if (f->kind != VSP_F_LEAK)
            continue;
        char where[1200] = "(no stack)";
        const struct vsp_stack *st = vsp_analysis_stack(a, f->stack_id);
        if (st && st->nframes) {
            struct vsp_frame_info fi[16];
            vsp_sym_frame(sym, st, 0, fi, 16);
            if (fi[0].function[0] && fi[0].file[0])
                snprintf(where, sizeof where, "%s (%s:%d)", fi[0].function, fi[0].file, fi[0].line);
            else if (fi[0].function[0])
                snprintf(where, sizeof where, "%s", fi[0].function);
            else
                snprintf(where, sizeof where, "%s+0x%llx", fi[0].module ? fi[0].module : "?",
                         (unsigned long long)fi[0].offset);
        }
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        printf("  %10s %6llu x %-14s %s %s\n", b1, (unsigned long long)f->count, vsp_api_name(f->api),
               vsp_memory_name(f->memory), where);
        shown++;
    }
    if (!shown)
        printf("  (nothing live)\n");
    vsp_sym_free(sym);
    fflush(stdout);
}

int vsp_top_main(int argc, char **argv)
{
    int once = 0;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--once"))
            once = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vramspy top [--once] TRACE\n  a live view of a trace being written; q or Ctrl-C quits\n");
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "vramspy top: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "vramspy top: one trace at a time\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: vramspy top [--once] TRACE\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (!once && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
            raw = 1;
            atexit(restore_terminal);
        }
    }
    struct vsp_analyze_opts o = {.fallback_window_ns = 5000000000ull};
    uint64_t last_allocs = 0;
    double last_t = now_s();
    int first = 1;
    /* Full-screen redraw only on a terminal that understands it; otherwise frames follow each
     * other (a pipe, a log, TERM=dumb). */
    const char *term = getenv("TERM");
    int ansi = !once && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0;
    while (!quit) {
        struct vsp_analysis a;
        struct stat st;
        if (!once && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < VSP_HEADER_SIZE) {
            /* created, not yet set up (the program is starting): wait rather than fail */
            if (ansi)
                fputs("\033[H\033[2J", stdout);
            printf("vramspy top  %s  (waiting for the trace to start; q quits)\n", path);
            fflush(stdout);
        } else if (vsp_analyze_file(path, &o, &a) < 0) {
            restore_terminal();
            fprintf(stderr, "vramspy top: %s\n", a.error);
            vsp_analysis_free(&a);
            return 2;
        } else {
            double t = now_s();
            double rate = first ? 0.0 : (double)(a.allocations - last_allocs) / (t - last_t);
            last_allocs = a.allocations;
            last_t = t;
            first = 0;
            frame(path, &a, rate, ansi, !once);
            vsp_analysis_free(&a);
        }
        if (once)
            break;
        /* wait a second for a key; q quits */
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        double until = now_s() + 1.0;
        while (!quit) {
            int ms = (int)((until - now_s()) * 1000);
            if (ms <= 0)
                break;
            int n = poll(&p, 1, ms);
            if (n > 0) {
                char ch;
                ssize_t r = read(STDIN_FILENO, &ch, 1);
                if (r == 1 && (ch == 'q' || ch == 'Q' || ch == 3))
                    quit = 1;
                else if (r == 0)
                    p.fd = -1; /* stdin closed: keep refreshing until a signal */
            } else if (n < 0 && errno != EINTR) {
                break;
            }
        }
    }
    restore_terminal();
    return 0;
}
