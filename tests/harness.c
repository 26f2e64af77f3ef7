/* Test harness (see harness.h). */
#include "harness.h"

#include <criterion/criterion.h>
#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/read/trace_reader.h"

extern char **environ;

static char tmpdir_path[64];

static void remove_tmpdir(void)
{
    char cmd[128];
    if (tmpdir_path[0] && !getenv("VSP_KEEP_TEST_DIRS")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir_path);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir_path);
    }
}

char *th_tmpdir(void)
{
    /* Criterion runs each test in its own process: one static buffer per process is enough,
     * and nothing is left for LeakSanitizer to report. Removed when the test process exits
     * (VSP_KEEP_TEST_DIRS=1 keeps it for a post-mortem). */
    snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/vsp-test-XXXXXX");
    if (!mkdtemp(tmpdir_path))
        return NULL;
    atexit(remove_tmpdir);
    return tmpdir_path;
}

void th_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static void slurp(int fd, char *buf, size_t len)
{
    size_t n = 0;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, len - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
}

int th_run(struct run_result *r, const char *const *argv, const char *const *env, int preload, int nofakes)
{
    memset(r, 0, sizeof *r);
    FILE *fo = tmpfile(), *fe = tmpfile();
    if (!fo || !fe)
        return -1;
    /* Build the child's environment: ours, minus what we set, plus env. */
    static const char *const drop[] = {"LD_PRELOAD=", "LD_LIBRARY_PATH=", "VRAMSPY_", "CUDA_VISIBLE_DEVICES=", NULL};
    char *envp[512];
    int n = 0;
    for (char **e = environ; *e && n < 400; e++) {
        int skip = 0;
        for (int i = 0; drop[i]; i++)
            if (!strncmp(*e, drop[i], strlen(drop[i])))
                skip = 1;
        if (!skip)
            envp[n++] = *e;
    }
    char preload_buf[8192], libpath[4096];
    if (preload == 2) {
#ifdef VSP_SAN_RUNTIME
        /* only the sanitizer runtime: for tools that preload the (instrumented) shim themselves */
        snprintf(preload_buf, sizeof preload_buf, "LD_PRELOAD=%s", VSP_SAN_RUNTIME);
        envp[n++] = preload_buf;
#endif
    } else if (preload) {
#ifdef VSP_SAN_RUNTIME
        snprintf(preload_buf, sizeof preload_buf, "LD_PRELOAD=%s:%s", VSP_SAN_RUNTIME, VSP_SHIM);
#else
        snprintf(preload_buf, sizeof preload_buf, "LD_PRELOAD=%s", VSP_SHIM);
#endif
        envp[n++] = preload_buf;
    }
    int own_libpath = 0; /* a test that sets LD_LIBRARY_PATH itself chooses its libraries */
    for (int i = 0; env && env[i]; i++)
        own_libpath |= !strncmp(env[i], "LD_LIBRARY_PATH=", 16);
    if (!nofakes && !own_libpath) {
        snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s:%s", VSP_FAKES, VSP_PROGS);
        envp[n++] = libpath;
    }
#ifdef VSP_SAN_RUNTIME
    /* The sanitizer runtime is preloaded only to host the instrumented shim: it must not turn
     * the test program's own crashes, aborts or deliberate leaks into its reports. */
    static char asan_opts[] = "ASAN_OPTIONS=handle_segv=0:handle_abort=0:handle_sigbus=0:detect_leaks=0:"
                              "allow_user_segv_handler=1";
    envp[n++] = asan_opts;
    static char tsan_opts[] = "TSAN_OPTIONS=handle_segv=0:handle_abort=0:handle_sigbus=0";
    envp[n++] = tsan_opts;
#endif
    for (int i = 0; env && env[i] && n < 510; i++)
        envp[n++] = (char *)env[i];
    envp[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r->pid = pid;
    r->exited = WIFEXITED(st);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    slurp(fileno(fo), r->out, sizeof r->out);
    slurp(fileno(fe), r->err, sizeof r->err);
    fclose(fo);
    fclose(fe);
    return 0;
}

/* A tiny open-addressing map address -> (size, memory) for recomputing what is live. */
struct live { uint64_t key, size; int mem; };

static uint64_t hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    return k ^ (k >> 33);
}

static struct live *find(struct live *t, size_t cap, uint64_t key, int insert)
{
    for (size_t i = hash(key) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (t[i].key == key)
            return &t[i];
        if (t[i].key == 0)
            return insert ? &t[i] : NULL;
    }
}

static int addr_class(unsigned memory)
{
    switch (memory) {
    case VSP_MEM_HOST_PINNED: case VSP_MEM_HOST_MAPPED: return 2;
    case VSP_MEM_HOST_REGISTERED: return 3;
    case VSP_MEM_ARRAY: return 4;
    case VSP_MEM_PHYSICAL: return 6;
    case VSP_MEM_IMPORTED: return 7; /* (buffers and imports share it here: the tests keep them apart) */
    default: return 1;
    }
}

int th_summarize(const char *path, struct trace_summary *s, const uint64_t *probes)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; probes && probes[i] && i < 8; i++)
        s->size_probe[i] = probes[i];
    struct vsp_reader *r = vsp_reader_open(path, s->error, sizeof s->error);
    if (!r)
        return -1;
    size_t cap = 1u << 20;
    struct live *t = calloc(cap, sizeof *t);
    uint8_t *stack_seen = calloc(1u << 20, 1);
    struct vsp_record rec;
    int rc;
    uint64_t live_dev = 0;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        if (rec.type == VSP_REC_PROCESS) {
            const struct vsp_rec_process *p = rec.payload;
            s->pid = p->pid;
            s->ppid = p->ppid;
            s->argc = (int)p->argc;
            snprintf(s->exe, sizeof s->exe, "%.*s", (int)p->exe_len, (const char *)(p + 1));
        } else if (rec.type == VSP_REC_MODULE) {
            s->modules++;
        } else if (rec.type == VSP_REC_STACK) {
            const struct vsp_rec_stack *st = rec.payload;
            s->stacks++;
            if (st->nframes > s->max_frames)
                s->max_frames = st->nframes;
            if (st->id < (1u << 20))
                stack_seen[st->id] = st->nframes > 254 ? 255 : (uint8_t)(st->nframes + 1);
        } else if (rec.type == VSP_REC_END) {
            s->has_end = 1;
            memset(&s->end, 0, sizeof s->end); /* an older shim's END is shorter */
            memcpy(&s->end, rec.payload, rec.payload_len < sizeof s->end ? rec.payload_len : sizeof s->end);
        } else if (rec.type == VSP_REC_USAGE && rec.payload_len >= sizeof(struct vsp_rec_usage)) {
            const struct vsp_rec_usage *u = rec.payload;
            if (s->usage_records++ == 0)
                s->first_usage = *u;
            s->last_usage = *u;
            s->usage_source = u->source;
            /* the baseline (the context's own memory) is what the first sample shows beyond
             * what was traced then */
            uint64_t base = s->first_usage.used_bytes > s->first_usage.traced_bytes
                                ? s->first_usage.used_bytes - s->first_usage.traced_bytes : 0;
            uint64_t explained = base + u->traced_bytes;
            if (u->used_bytes > explained && u->used_bytes - explained > s->max_untracked)
                s->max_untracked = u->used_bytes - explained;
        } else if (rec.type == VSP_REC_POOL && rec.payload_len >= sizeof(struct vsp_rec_pool)) {
            const struct vsp_rec_pool *pl = rec.payload;
            s->pool_records++;
            if (pl->used_high != VSP_UNKNOWN_BYTES && pl->used_high > s->pool_used_high)
                s->pool_used_high = pl->used_high;
        } else if (rec.type == VSP_REC_EVENT) {
            const struct vsp_rec_event *e = rec.payload;
            s->events++;
            if (e->api < VSP_API_COUNT_)
                s->by_api[e->api]++;
            if (e->stack_id && (e->stack_id >= (1u << 20) || !stack_seen[e->stack_id]))
                s->stack_refs_missing++;
            uint64_t key = (e->ptr & ((1ull << 56) - 1)) | ((uint64_t)addr_class(e->memory) << 56);
            if (e->op == VSP_OP_ALLOC) {
                if (e->result != 0) {
                    s->allocs_failed++;
                    if (e->eflags & VSP_EVENT_DENIED)
                        s->denied++;
                    if (e->result == 2) {
                        s->oom_events++;
                        if (e->free_bytes != VSP_UNKNOWN_BYTES)
                            s->oom_with_meminfo++;
                    }
                    continue;
                }
                s->allocs_ok++;
                if (e->memory < VSP_MEM_COUNT_)
                    s->by_memory[e->memory]++;
                for (int i = 0; i < 8 && s->size_probe[i]; i++)
                    if (e->size == s->size_probe[i])
                        s->count_size[i]++;
                if (!e->ptr)
                    continue; /* a zero-byte request that succeeded with NULL holds nothing */
                struct live *l = find(t, cap, key, 1);
                l->key = key;
                l->size = e->size;
                l->mem = e->memory;
                s->live_count++;
                s->live_bytes += e->size;
                if (vsp_memory_is_device(e->memory)) {
                    live_dev += e->size;
                    if (live_dev > s->peak_device_bytes)
                        s->peak_device_bytes = live_dev;
                }
            } else if (e->op == VSP_OP_FREE) {
                unsigned frames = e->stack_id && e->stack_id < (1u << 20) && stack_seen[e->stack_id]
                                      ? stack_seen[e->stack_id] - 1u : 0;
                if (e->result != 0) {
                    s->frees_failed++;
                    if (frames > s->failed_free_frames)
                        s->failed_free_frames = frames;
                    continue;
                }
                if (frames > s->ok_free_frames)
                    s->ok_free_frames = frames;
                s->frees_ok++;
                struct live *l = e->ptr ? find(t, cap, key, 0) : NULL;
                if (l) {
                    s->live_count--;
                    s->live_bytes -= l->size;
                    if (vsp_memory_is_device(l->mem))
                        live_dev -= l->size;
                    /* delete by re-inserting the rest of the cluster */
                    size_t i = (size_t)(l - t);
                    t[i].key = 0;
                    for (size_t j = (i + 1) & (cap - 1); t[j].key; j = (j + 1) & (cap - 1)) {
                        struct live tmp = t[j];
                        t[j].key = 0;
                        *find(t, cap, tmp.key, 1) = tmp;
                    }
                }
            }
        }
    }
    s->live_device_bytes = live_dev;
    struct vsp_reader_stats st;
    vsp_reader_stats(r, &st);
    s->complete = st.complete;
    s->finalized = st.finalized;
    s->torn = st.torn;
    s->skipped = st.skipped_bytes;
    s->dropped = st.dropped;
    if (rc < 0)
        snprintf(s->error, sizeof s->error, "%s", vsp_reader_error(r));
    s->ok = rc == 0;
    vsp_reader_close(r);
    free(t);
    free(stack_seen);
    return rc;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(a, b);
}

int th_list_traces(const char *dir, char paths[][4096], int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (strstr(de->d_name, ".trace"))
            snprintf(paths[n++], 4096, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(paths, (size_t)n, 4096, cmpstr);
    return n;
}

void th_run_pair(struct run_result *plain, struct run_result *shim, const char *const *argv, const char *dir,
                 const char *const *extra_env)
{
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *env[16] = {out};
    int n = 1;
    for (int i = 0; extra_env && extra_env[i] && n < 15; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    cr_assert_eq(th_run(plain, argv, extra_env, 0, 0), 0);
    cr_assert_eq(th_run(shim, argv, env, 1, 0), 0);
    cr_assert_eq(shim->exited, plain->exited, "under the shim: %s %d; plain: %s %d; stderr: %s",
                 shim->exited ? "exit" : "signal", shim->exited ? shim->code : shim->sig,
                 plain->exited ? "exit" : "signal", plain->exited ? plain->code : plain->sig, shim->err);
    cr_assert_eq(shim->code, plain->code, "exit status changed: %d under the shim, %d without; stderr: %s",
                 shim->code, plain->code, shim->err);
    cr_assert_str_eq(shim->out, plain->out, "stdout changed under the shim; stderr: %s", shim->err);
}

void th_run_traced(struct run_result *r, const char *const *argv, const char *dir, const char *trace,
                   const char *const *extra_env)
{
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/%s", dir, trace);
    const char *env[16] = {out};
    int n = 1;
    for (int i = 0; extra_env && extra_env[i] && n < 15; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    cr_assert_eq(th_run(r, argv, env, 1, 0), 0);
}

void th_run_both(struct run_result *plain, struct run_result *shim, const char *const *argv,
                 const char *const *env, int nofakes)
{
    cr_assert_eq(th_run(plain, argv, NULL, 0, nofakes), 0);
    cr_assert_eq(th_run(shim, argv, env, 1, nofakes), 0);
    cr_assert_eq(shim->code, plain->code, "exit status changed: %d under the shim, %d without; stderr: %s",
                 shim->code, plain->code, shim->err);
    cr_assert_str_eq(shim->out, plain->out, "stdout changed under the shim; stderr: %s", shim->err);
}

pid_t th_start(const char *path, const char *const *argv, const char *const *env, char *first, size_t len)
{
    char *envp[16] = {TH_PRELOAD_ENV, "LD_LIBRARY_PATH=" VSP_FAKES};
    int n = 2;
    for (int i = 0; env && env[i] && n < 15; i++)
        envp[n++] = (char *)env[i];
    envp[n] = NULL;
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execve(path, (char *const *)argv, envp);
        _exit(127);
    }
    close(pfd[1]);
    memset(first, 0, len);
    ssize_t got = read(pfd[0], first, len - 1);
    close(pfd[0]);
    cr_assert_gt(got, 0, "%s did not start", path);
    return pid;
}

void th_report(struct run_result *r, const char *args)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' %s", VSP_SOURCE_DIR, VSP_BUILD_DIR "/vramspy-report", args);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 0, 1), 0);
}

json_t *th_report_json(const char *trace)
{
    static struct run_result r;
    const char *argv[] = {VSP_BUILD_DIR "/vramspy-report", "--format", "json", trace, NULL};
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "vramspy-report: %s", r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "the report is JSON: %s; stderr: %s", je.text, r.err);
    return j;
}

size_t th_findings_of(json_t *j, const char *kind, int64_t *count, int64_t *bytes)
{
    size_t i, n = 0;
    json_t *f;
    if (count)
        *count = 0;
    if (bytes)
        *bytes = 0;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        const char *k = json_string_value(json_object_get(f, "kind"));
        if (!k || strcmp(k, kind) != 0)
            continue;
        n++;
        if (count)
            *count += json_integer_value(json_object_get(f, "count"));
        if (bytes)
            *bytes += json_integer_value(json_object_get(f, "bytes"));
    }
    return n;
}

void th_one_trace(const char *dir, struct trace_summary *s, const uint64_t *probes, char *path_out)
{
    char paths[8][4096];
    int n = th_list_traces(dir, paths, 8);
    cr_assert_eq(n, 1, "expected one trace in %s, found %d", dir, n);
    th_summarize(paths[0], s, probes);
    cr_assert(s->ok, "reading %s: %s", paths[0], s->error);
    if (path_out)
        snprintf(path_out, 4096, "%s", paths[0]);
}

void th_fork_traces(const char *dir, uint32_t parent_pid, const uint64_t *probes, struct trace_summary *parent,
                    struct trace_summary *child)
{
    char paths[8][4096];
    cr_assert_eq(th_list_traces(dir, paths, 8), 2, "one trace per process");
    struct trace_summary a, b;
    th_summarize(paths[0], &a, probes);
    th_summarize(paths[1], &b, probes);
    cr_assert(a.ok, "%s", a.error);
    cr_assert(b.ok, "%s", b.error);
    *parent = a.pid == parent_pid ? a : b;
    *child = a.pid == parent_pid ? b : a;
    cr_assert_eq(parent->pid, parent_pid);
    cr_assert_eq(child->ppid, parent_pid);
}

json_t *th_json(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "report output is not JSON: %s (line %d): %.400s", err.text, err.line, text);
    return j;
}

json_t *th_json_find(json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *o;
    json_array_foreach(array, i, o)
    {
        const char *v = json_string_value(json_object_get(o, key));
        if (v && !strcmp(v, value))
            return o;
    }
    return NULL;
}

#if defined(__SANITIZE_ADDRESS__)
/* The test binary's own ASan/LSan options (its runner and its workers; the programs it runs get
 * theirs from th_run). Criterion's runner loses a few event records of its own when two workers
 * report at once (--jobs 2); tests/lsan.supp names them by criterion_run_all_tests, which is on no
 * worker's stack, and the full unwinding on malloc is what puts that frame into the record (the
 * fast unwinder stops inside libcriterion, built without frame pointers). A test that leaks is
 * still reported. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "suppressions=" VSP_SOURCE_DIR "/tests/lsan.supp:print_suppressions=0";
}
#endif
