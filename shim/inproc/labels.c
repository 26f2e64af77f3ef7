/* Purpose labels: vsp_label_push/pop (include/vramspy/vramspy.h) keep a per-thread stack of label
 * ids; events carry the innermost one (eflags bits 16..31) and the trace names them in LABEL
 * records, written lazily before the first event that uses a label not yet written. Interning a
 * name takes a private spin flag (push is the program's call, not a CUDA hook); the hot path only
 * reads the thread's stack and one counter.
 * Must never: allocate, or block a CUDA hook. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/inproc/inproc.h"

#define MAX_LABELS 1024
#define NAME_MAX_ 64

/* mapped at the first label (not in the library's bss: start-up pays for none of it) */
static char (*names)[NAME_MAX_];
static unsigned nlabels = 1;   /* ids 1..nlabels-1 are valid (atomic) */
static unsigned emitted = 1;   /* ids below this are in the current trace (atomic) */
static int lock;               /* spin flag for interning and emitting */

static void spin_lock(void)
{
    vsp_spin_lock(&lock);
}

static void spin_unlock(void)
{
    vsp_spin_unlock(&lock);
}

static unsigned find(const char *name)
{
    /* acquire: names[i] for i < n were written before n was published */
    unsigned n = vsp_load_acquire(&nlabels);
    for (unsigned i = 1; i < n; i++)
        if (strncmp(names[i], name, NAME_MAX_ - 1) == 0)
            return i;
    return 0;
}

uint16_t vsp_label_intern(const char *name)
{
    if (!name || !*name)
        return 0;
    unsigned id = find(name);
    if (id)
        return (uint16_t)id;
    spin_lock();
    if (!names) {
        void *m = mmap(NULL, MAX_LABELS * NAME_MAX_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            spin_unlock();
            return 0;
        }
        names = m; /* (read only for ids below nlabels, published after a name is written) */
    }
    id = find(name);
    if (!id && nlabels < MAX_LABELS) {
        id = nlabels;
        strncpy(names[id], name, NAME_MAX_ - 1);
        names[id][NAME_MAX_ - 1] = 0;
        vsp_store_release(&nlabels, id + 1); /* release: the name before the count */
    }
    spin_unlock();
    return (uint16_t)id;
}

const char *vsp_label_name(uint16_t id)
{
    return id && id < vsp_load_acquire(&nlabels) ? names[id] : NULL;
}

void vsp_labels_sync(uint16_t id)
{
    if (id < vsp_load_acquire(&emitted))
        return;
    spin_lock();
    unsigned n = vsp_load_acquire(&nlabels);
    for (unsigned i = vsp_load_relaxed(&emitted); i < n; i++) {
        struct vsp_resv res;
        size_t len = strlen(names[i]) + 1;
        if (vsp_ring_reserve(vsp_trace_ring(), VSP_REC_LABEL, (uint32_t)(sizeof(struct vsp_rec_label) + len), &res) < 0)
            break;
        struct vsp_rec_label *l = res.payload;
        l->id = i;
        l->name_len = (uint32_t)len;
        memcpy(l + 1, names[i], len);
        vsp_ring_commit(vsp_trace_ring(), &res);
        vsp_store_release(&emitted, i + 1);
    }
    spin_unlock();
}

void vsp_labels_reset_trace(void)
{
    emitted = 1; /* a new trace (forked child): its LABEL records are written anew */
    lock = 0;
}

uint16_t vsp_label_current(void)
{
    int n = vsp_tls.nlabels;
    if (n <= 0)
        return 0;
    return vsp_tls.labels[(n > VSP_LABEL_DEPTH ? VSP_LABEL_DEPTH : n) - 1];
}

VSP_EXPORT void vsp_label_push(const char *label)
{
    vsp_init();
    uint16_t id = vsp_label_intern(label);
    if (vsp_tls.nlabels < VSP_LABEL_DEPTH)
        vsp_tls.labels[vsp_tls.nlabels] = id;
    vsp_tls.nlabels++;
}

VSP_EXPORT void vsp_label_pop(void)
{
    if (vsp_tls.nlabels > 0)
        vsp_tls.nlabels--;
}

/* ---- VRAMSPY_PURPOSES: labels from rules, decided once per distinct stack ---- */

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/common/frameinfo.h"
#include "shim/common/purposes.h"
#include "shim/walk/pyframes.h"
#include "shim/common/pymerge.h"

static struct vsp_purposes *rules_; /* mapped with the rules' text when VRAMSPY_PURPOSES is read */
#define rules (*rules_)
static uint16_t rule_label[VSP_PURPOSE_MAX];
static int have_rules;
#define STACK_LABELS (1u << 18)
static uint16_t *stack_labels; /* by stack id modulo STACK_LABELS */

void vsp_purposes_load(void)
{
    struct loaded {
        struct vsp_purposes r;
        char text[65536];
    } *ld = mmap(NULL, sizeof *ld, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ld == MAP_FAILED) {
        vsp_warn("VRAMSPY_PURPOSES=%s: no memory to read it; no purpose labels", vsp_cfg.purposes_path);
        return;
    }
    rules_ = &ld->r; /* (have_rules, set last, says when they may be used) */
    char *text = ld->text;
    int fd = vsp_fd_above_stdio(open(vsp_cfg.purposes_path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        vsp_warn("VRAMSPY_PURPOSES=%s: cannot open: %s; no purpose labels", vsp_cfg.purposes_path, strerror(errno));
        return;
    }
    ssize_t n = read(fd, text, sizeof ld->text - 1);
    close(fd);
    if (n < 0 || n == (ssize_t)sizeof ld->text - 1) {
        vsp_warn("VRAMSPY_PURPOSES=%s: unreadable or larger than 64 KiB; no purpose labels", vsp_cfg.purposes_path);
        return;
    }
    text[n] = 0;
    char err[256];
    if (vsp_purposes_parse(text, &rules, err, sizeof err) < 0) {
        vsp_warn("VRAMSPY_PURPOSES=%s: %s; no purpose labels", vsp_cfg.purposes_path, err);
        return;
    }
    for (int i = 0; i < rules.n; i++)
        rule_label[i] = vsp_label_intern(rules.p[i].label);
    void *p = mmap(NULL, STACK_LABELS * sizeof *stack_labels, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return;
    stack_labels = p;
    have_rules = rules.n > 0;
    /* Rules need names for every new stack: load the symboliser now, at start-up, rather than
     * inside the first hook (a dlopen there could meet another thread's dlopen). */
    if (have_rules)
        vsp_inproc_preload();
}

/* A Python frame's names matched against the rules (function: the qualified name; module: the file). */
static int python_rule(uint64_t word)
{
    char function[256], file[1024];
    if (vsp_py_frame_names(word, function, sizeof function, file, sizeof file) < 0)
        return -1;
    return vsp_purposes_match_frame(&rules, function, NULL, file);
}

void vsp_stack_label_compute(uint32_t stack_id, const uint64_t *frames, unsigned n, const uint64_t *py, unsigned m)
{
    if (!have_rules)
        return;
    uint16_t label = 0;
    struct vsp_pymerge pm = {py, m, 0};
    /* Innermost frame first, and within a frame its inlined functions innermost first, with the
     * same names (demangled) that the report's --purposes matches; an eval-loop frame stands for
     * the Python frames it ran, as in the report (pymerge.h). */
    for (unsigned i = 0; i < n && !label; i++) {
        struct vsp_frame_info fi[8];
        char module[VSP_PATH_MAX];
        int nf = vsp_inproc_frames(frames[i], fi, 8, module, sizeof module);
        if (pm.next < m && vsp_is_eval_frame(fi[nf - 1].function)) {
            unsigned first, cnt = vsp_pymerge_take(&pm, &first);
            for (unsigned k = 0; k < cnt && !label; k++) {
                int r = python_rule(py[first + k]);
                if (r >= 0)
                    label = rule_label[r];
            }
            continue;
        }
        for (int k = 0; k < nf && !label; k++) {
            int r = vsp_purposes_match(&rules, fi[k].function, module);
            if (r >= 0)
                label = rule_label[r];
        }
    }
    for (unsigned k = pm.next; k < m && !label; k++) {
        int r = python_rule(py[k]);
        if (r >= 0)
            label = rule_label[r];
    }
    vsp_store_relaxed(&stack_labels[stack_id & (STACK_LABELS - 1)], label);
}

uint16_t vsp_stack_label(uint32_t stack_id)
{
    return have_rules && stack_id ? vsp_load_relaxed(&stack_labels[stack_id & (STACK_LABELS - 1)]) : 0;
}
