/* vramspy top TRACE: a live view of a trace that is still being written — current and peak bytes
 * by memory kind, allocation rate, top live call sites — redrawn every second in a plain
 * terminal (ANSI clear and home only, so it works over ssh); q or Ctrl-C quits and restores the
 * terminal. --once prints one frame and exits (scripts, tests). When the process that writes the
 * trace is gone (it finalised the trace, or its pid no longer runs), the view draws a last frame
 * saying so and exits 0: it never shows a dead process as live. The allocation rate comes from the
 * trace's own event times (the last RATE_WINDOW_S seconds of it), so the first frame has it too.
 * A live call site whose bytes keep reaching new highs through the second half of the run so far
 * (a growth finding, docs/report.md) is marked GROWING. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "report/analyze/analyze.h"
#include "report/out/output.h"
#include "report/analyze/symbolize.h"
#include "report/read/trace_reader.h"

#define RATE_WINDOW_S 10.0

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

/* The writer's state, as far as top can tell. */
enum proc_state { PROC_LIVE, PROC_EXITED, PROC_GONE };

/* A live allocation (top's own table: the analysis reports a running process's allocations as
 * live, not as leaks, so it has no per-site list of them). */
struct live_alloc {
    uint64_t ptr; /* 0: empty slot; UINT64_MAX: deleted */
    uint64_t size;
    uint32_t stack_id;
    uint16_t api;
    uint8_t memory;
};
struct live_site {
    uint32_t stack_id;
    uint16_t api;
    uint8_t memory;
    uint64_t bytes, count;
};

struct top_pass {
    struct vsp_file_header hdr;
    struct live_alloc *tab;
    size_t cap, used;        /* used: slots not empty (live or deleted) */
    struct live_site *sites; /* grouped by (stack, api, memory), largest first */
    size_t nsites;
    uint64_t in_window;      /* successful allocations in [window_start, window_end] */
    double window_s;         /* its length (0: no window: nothing to measure against) */
};

static size_t slot_of(const struct top_pass *t, uint64_t ptr)
{
    uint64_t h = ptr * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (t->cap - 1);
}

static int live_put(struct top_pass *t, const struct vsp_rec_event *e)
{
    if ((t->used + 1) * 2 > t->cap) {
        struct top_pass g = {.cap = t->cap ? t->cap * 2 : 1024};
        g.tab = calloc(g.cap, sizeof *g.tab);
        if (!g.tab)
            return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->tab[i].ptr || t->tab[i].ptr == UINT64_MAX)
                continue;
            size_t j = slot_of(&g, t->tab[i].ptr);
            while (g.tab[j].ptr)
                j = (j + 1) & (g.cap - 1);
            g.tab[j] = t->tab[i];
            g.used++;
        }
        free(t->tab);
        t->tab = g.tab;
        t->cap = g.cap;
        t->used = g.used;
    }
    size_t j = slot_of(t, e->ptr);
    while (t->tab[j].ptr && t->tab[j].ptr != UINT64_MAX && t->tab[j].ptr != e->ptr)
        j = (j + 1) & (t->cap - 1);
    if (!t->tab[j].ptr)
        t->used++;
    t->tab[j] = (struct live_alloc){e->ptr, e->size, e->stack_id, e->api, e->memory};
    return 0;
}

static void live_del(struct top_pass *t, uint64_t ptr)
{
    if (!t->cap)
        return;
    for (size_t j = slot_of(t, ptr); t->tab[j].ptr; j = (j + 1) & (t->cap - 1))
        if (t->tab[j].ptr == ptr) {
            t->tab[j].ptr = UINT64_MAX;
            return;
        }
}

static int cmp_site(const void *x, const void *y)
{
    const struct live_site *a = x, *b = y;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->count < b->count ? 1 : a->count > b->count ? -1 : 0;
}

/* Group the live table by (stack, api, memory). Sites are few; a sort-and-merge of the live
 * entries keeps it simple. */
static int cmp_live_key(const void *x, const void *y)
{
    const struct live_alloc *a = x, *b = y;
    if (a->stack_id != b->stack_id)
        return a->stack_id < b->stack_id ? -1 : 1;
    if (a->api != b->api)
        return a->api < b->api ? -1 : 1;
    return (int)a->memory - (int)b->memory;
}

static int group_sites(struct top_pass *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->tab[i].ptr && t->tab[i].ptr != UINT64_MAX && t->tab[i].memory != VSP_MEM_MAPPING)
            t->tab[n++] = t->tab[i]; /* compacts in place: the table is not used as a hash after this */
    qsort(t->tab, n, sizeof *t->tab, cmp_live_key);
    t->sites = calloc(n ? n : 1, sizeof *t->sites);
    if (!t->sites)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct live_alloc *l = &t->tab[i];
        struct live_site *s = t->nsites ? &t->sites[t->nsites - 1] : NULL;
        if (!s || s->stack_id != l->stack_id || s->api != l->api || s->memory != l->memory) {
            s = &t->sites[t->nsites++];
            *s = (struct live_site){.stack_id = l->stack_id, .api = l->api, .memory = l->memory};
        }
        s->bytes += l->size;
        s->count++;
    }
    qsort(t->sites, t->nsites, sizeof *t->sites, cmp_site);
    return 0;
}

/* A zombie (exited, not yet reaped by its parent) still has a /proc entry: it is gone all the same. */
static int is_zombie(uint32_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* A trace whose PROCESS record is not written yet (the program is starting): does the pid in its
 * header run, and has it not finalised the trace? */
static int starting_writer_runs(const char *path)
{
    struct vsp_file_header h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, &h, sizeof h, 0);
    close(fd);
    if (n != (ssize_t)sizeof h || !h.pid || (h.flags & VSP_FLAG_COMPLETE))
        return 0;
    return (kill((pid_t)h.pid, 0) == 0 || errno == EPERM) && !is_zombie(h.pid);
}

/* The second pass top makes over the trace: the header, the live allocations by site, and the
 * successful allocations in the rate window — the last RATE_WINDOW_S seconds of the trace's own
 * time (up to now while the process runs, up to its last event or end once it is gone), or its
 * whole life when shorter. */
static int top_pass(const char *path, const struct vsp_analysis *a, enum proc_state state, struct top_pass *t,
                    char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    struct vsp_reader *r = vsp_reader_open(path, err, errlen);
    if (!r)
        return -1;
    t->hdr = *vsp_reader_header(r);
    uint64_t end = a->last_time_ns;
    if (state == PROC_LIVE) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* the same clock as the events' (same machine: it runs) */
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        if (now > end)
            end = now;
    } else if (t->hdr.end_monotonic_ns > end) {
        end = t->hdr.end_monotonic_ns;
    }
    uint64_t begin = t->hdr.start_monotonic_ns && t->hdr.start_monotonic_ns <= end ? t->hdr.start_monotonic_ns
                                                                                  : a->first_time_ns;
    uint64_t win = (uint64_t)(RATE_WINDOW_S * 1e9);
    if (end > begin + win)
        begin = end - win;
    t->window_s = end > begin ? (double)(end - begin) / 1e9 : 0.0;
    struct vsp_record rec;
    int rc;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        if (rec.type != VSP_REC_EVENT)
            continue;
        const struct vsp_rec_event *e = rec.payload;
        if (e->result != 0)
            continue;
        if (e->op == VSP_OP_ALLOC) {
            if (e->time_ns >= begin && e->time_ns <= end)
                t->in_window++;
            if (e->ptr && live_put(t, e) < 0)
                break;
        } else if (e->op == VSP_OP_FREE) {
            live_del(t, e->ptr);
        }
    }
    vsp_reader_close(r);
    return group_sites(t);
}

static void top_pass_free(struct top_pass *t)
{
    free(t->tab);
    free(t->sites);
}

static void frame(const char *path, const struct vsp_analysis *a, const struct top_pass *t, enum proc_state state,
                  int clear, int live)
{
    char b1[32], b2[32];
    if (clear)
        fputs("\033[H\033[2J", stdout);
    else if (live)
        fputs("\n", stdout); /* frames one after another: a blank line between them */
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    printf("vramspy top  %s  pid %u  %s  %s%s\n", path, a->pid, a->exe ? a->exe : "?", when,
           live && state == PROC_LIVE ? "  (q quits)" : "");
    if (state == PROC_LIVE)
        printf("trace: live, %llu events\n\n", (unsigned long long)a->events);
    else if (state == PROC_EXITED)
        printf("trace: finished (process %u exited), %llu events\n\n", a->pid, (unsigned long long)a->events);
    else
        printf("trace: process %u is gone without finishing its trace (killed or crashed), %llu events\n\n", a->pid,
               (unsigned long long)a->events);
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
    double rate = t->window_s > 0 ? (double)t->in_window / t->window_s : 0.0;
    char span[32];
    if (t->window_s < 1.0)
        snprintf(span, sizeof span, "%.0f ms", t->window_s * 1e3);
    else
        snprintf(span, sizeof span, "%.1f s", t->window_s);
    printf("allocations %llu (%.1f/s in %s last %s), frees %llu, failed %llu, live %llu\n\n",
           (unsigned long long)a->allocations, rate, state == PROC_LIVE ? "the" : "the trace's", span,
           (unsigned long long)a->frees,
           (unsigned long long)a->failed, (unsigned long long)a->live_allocations);
    printf("top live call sites:\n");
    struct vsp_symbolizer *sym = vsp_sym_new(a, NULL, NULL);
    size_t shown = 0;
    for (; shown < t->nsites && shown < 10; shown++) {
        const struct live_site *s = &t->sites[shown];
        char where[1200] = "(no stack)";
        const struct vsp_stack *st = vsp_analysis_stack(a, s->stack_id);
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
            char py[600]; /* issue 21: the Python line that made the call */
            size_t n = strlen(where);
            if (vsp_python_site(a, s->stack_id, py, sizeof py) && n < sizeof where)
                snprintf(where + n, sizeof where - n, ", Python: %s", py);
        }
        vsp_human_bytes(b1, sizeof b1, s->bytes);
        /* a site whose live bytes keep reaching new highs through the second half so far (the
         * analysis's growth finding) is marked */
        char growing[64] = "";
        for (size_t k = 0; k < a->nfindings; k++) {
            const struct vsp_finding *f = &a->findings[k];
            if (f->kind == VSP_F_GROWTH && f->stack_id == s->stack_id && f->api == s->api) {
                vsp_human_bytes(b2, sizeof b2, f->bytes);
                snprintf(growing, sizeof growing, "  GROWING +%s over the second half", b2);
                break;
            }
        }
        printf("  %10s %6llu x %-14s %s %s%s\n", b1, (unsigned long long)s->count, vsp_api_name(s->api),
               vsp_memory_name(s->memory), where, growing);
    }
    if (!shown)
        printf("  (nothing live)\n");
    vsp_sym_free(sym);
    if (state != PROC_LIVE && live)
        printf("\nvramspy top: process %u has ended; this was its last frame\n", a->pid);
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
            printf("usage: vramspy top [--once] TRACE\n"
                   "  a live view of a trace being written; q or Ctrl-C quits; when the process has\n"
                   "  ended, its last frame says so and top exits\n");
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
    /* Full-screen redraw only on a terminal that understands it; otherwise frames follow each
     * other (a pipe, a log, TERM=dumb). */
    const char *term = getenv("TERM");
    int ansi = !once && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0;
    int ended = 0;
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
            /* The analysis says whether the writer still runs (same pid and start time, not a
             * zombie: analyze.c process_is_live). */
            enum proc_state state = a.in_progress ? PROC_LIVE : PROC_GONE;
            if (!a.pid && starting_writer_runs(path))
                state = PROC_LIVE; /* the header is there, its PROCESS record not yet */
            struct top_pass t;
            char err[700] = "";
            if (top_pass(path, &a, state, &t, err, sizeof err) < 0) {
                restore_terminal();
                fprintf(stderr, "vramspy top: %s\n", err[0] ? err : "out of memory");
                top_pass_free(&t);
                vsp_analysis_free(&a);
                return 2;
            }
            if (state != PROC_LIVE && (t.hdr.flags & VSP_FLAG_COMPLETE))
                state = PROC_EXITED;
            frame(path, &a, &t, state, ansi, !once);
            top_pass_free(&t);
            vsp_analysis_free(&a);
            ended = state != PROC_LIVE;
        }
        if (once || ended)
            break; /* a dead process's last frame stays on the screen */
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
