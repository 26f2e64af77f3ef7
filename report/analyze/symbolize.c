/* Symbolisation (see symbolize.h). One Dwfl per distinct file, created on first use and shared by
 * every module record of that path (a plugin reloaded 1,000 times at new addresses is opened
 * once): the ELF file is reported at bias 0 and looked up at address - the record's load bias.
 * Lookups use address-1 because every frame is a return address and the call precedes it. */
#include "report/analyze/symbolize.h"
#include "shim/common/dwframe.h"
#include "shim/common/pymerge.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct modstate {
    int tried;
    Dwfl_Module *mod;  /* the shared file's, or NULL */
};

/* One recorded path, opened at most once. */
struct filestate {
    const char *path;  /* as recorded (the analysis owns it) */
    Dwfl *dwfl;
    Dwfl_Module *mod;
};

struct vsp_symbolizer {
    const struct vsp_analysis *a;
    struct modstate *mods;
    struct filestate *files;
    size_t nfiles, capfiles;
    char *sysroot, *debug_dir;
    char *debuginfo_path;
    Dwfl_Callbacks cb;
    char *warnings;
    size_t wlen;
};

static void warn(struct vsp_symbolizer *s, const char *fmt, const char *arg)
{
    char line[1200];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n <= 0)
        return;
    if (s->warnings && strstr(s->warnings, line))
        return;
    char *w = realloc(s->warnings, s->wlen + (size_t)n + 2);
    if (!w)
        return;
    memcpy(w + s->wlen, line, (size_t)n);
    s->wlen += (size_t)n;
    w[s->wlen++] = '\n';
    w[s->wlen] = 0;
    s->warnings = w;
}

struct vsp_symbolizer *vsp_sym_new(const struct vsp_analysis *a, const char *sysroot, const char *debug_dir)
{
    struct vsp_symbolizer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->a = a;
    s->mods = calloc(a->nmodules ? a->nmodules : 1, sizeof *s->mods);
    s->sysroot = sysroot ? strdup(sysroot) : NULL;
    s->debug_dir = debug_dir ? strdup(debug_dir) : NULL;
    /* libdwfl's search path: the --debug-dir first, then its defaults (.debug, /usr/lib/debug) */
    char buf[4200];
    snprintf(buf, sizeof buf, "%s%s-+:.debug:/usr/lib/debug", debug_dir ? debug_dir : "", debug_dir ? ":" : "");
    s->debuginfo_path = strdup(buf);
    s->cb.find_elf = dwfl_build_id_find_elf;
    s->cb.find_debuginfo = dwfl_standard_find_debuginfo;
    s->cb.section_address = dwfl_offline_section_address;
    s->cb.debuginfo_path = &s->debuginfo_path;
    return s;
}

/* Only regular files: a module path comes from the trace, and a device or FIFO must not be read. */
static int readable_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && access(p, R_OK) == 0;
}

static const char *find_file(struct vsp_symbolizer *s, const char *path, char *buf, size_t len)
{
    if (s->sysroot) {
        snprintf(buf, len, "%s/%s", s->sysroot, path);
        if (readable_file(buf))
            return buf;
    }
    if (readable_file(path))
        return path;
    if (s->debug_dir) {
        const char *base = strrchr(path, '/');
        snprintf(buf, len, "%s/%s", s->debug_dir, base ? base + 1 : path);
        if (readable_file(buf))
            return buf;
    }
    return NULL;
}

static struct filestate *file_for(struct vsp_symbolizer *s, const char *recpath)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (!strcmp(s->files[i].path, recpath))
            return &s->files[i];
    if (s->nfiles == s->capfiles) {
        size_t cap = s->capfiles ? s->capfiles * 2 : 16;
        struct filestate *nf = realloc(s->files, cap * sizeof *nf);
        if (!nf)
            return NULL;
        s->files = nf;
        s->capfiles = cap;
    }
    struct filestate *fs = &s->files[s->nfiles++];
    memset(fs, 0, sizeof *fs);
    fs->path = recpath;
    char buf[4200];
    const char *file = find_file(s, recpath, buf, sizeof buf);
    if (!file) {
        warn(s, "module %s: not found (use --sysroot or --debug-dir): frames shown as module+offset", recpath);
        return fs;
    }
    fs->dwfl = dwfl_begin(&s->cb);
    if (!fs->dwfl)
        return fs;
    dwfl_report_begin(fs->dwfl);
    fs->mod = dwfl_report_elf(fs->dwfl, recpath, file, -1, 0, false);
    dwfl_report_end(fs->dwfl, NULL, NULL);
    if (!fs->mod)
        warn(s, "module %s: not a readable ELF file", recpath);
    return fs;
}

static Dwfl_Module *module_for(struct vsp_symbolizer *s, int m)
{
    struct modstate *ms = &s->mods[m];
    if (ms->tried)
        return ms->mod;
    ms->tried = 1;
    const struct vsp_module *rec = &s->a->modules[m];
    if (!rec->path[0] || strstr(rec->path, "linux-vdso"))
        return NULL;
    struct filestate *fs = file_for(s, rec->path);
    if (!fs || !fs->mod)
        return NULL;
    ms->mod = fs->mod;
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(ms->mod, &bits, &vaddr);
    if (rec->build_id_len && (n != (int)rec->build_id_len || memcmp(bits, rec->build_id, rec->build_id_len) != 0))
        warn(s, "module %s: build-id differs from the one recorded in the trace: its symbols may be wrong",
             rec->path);
    return ms->mod;
}

/* A Python frame: its code object's names from the PYCODE record, the line from the frame word. */
static int python_frame(const struct vsp_symbolizer *s, uint64_t word, struct vsp_frame_info *f)
{
    const struct vsp_pycode *c = vsp_pycode_find(s->a, VSP_PYFRAME_CODE(word));
    f->python = 1;
    snprintf(f->function, sizeof f->function, "%s", c ? c->name : "<unknown Python code>");
    const char *base = c ? strrchr(c->file, '/') : NULL;
    snprintf(f->file, sizeof f->file, "%s", c ? (base ? base + 1 : c->file) : "");
    f->path = c ? c->file : NULL;
    f->line = (int)VSP_PYFRAME_LINE(word);
    return 1;
}

int vsp_sym_frame(struct vsp_symbolizer *s, const struct vsp_stack *st, unsigned i, struct vsp_frame_info *out, int max)
{
    uint64_t addr = st->frames[i];
    int m = st->module[i];
    struct vsp_frame_info *f = &out[0];
    memset(f, 0, sizeof *f);
    f->address = addr;
    if (VSP_PYFRAME_IS(addr))
        return python_frame(s, addr, f);
    if (m < 0)
        return 1;
    const struct vsp_module *rec = &s->a->modules[m];
    f->module = rec->path;
    f->offset = addr - rec->base;
    Dwfl_Module *mod = module_for(s, m);
    if (!mod)
        return 1;
    /* the file is reported at bias 0: look up the address relative to this record's bias */
    int n = vsp_dw_frame(mod, addr - rec->base, out, max);
    for (int k = 0; k < n; k++) {
        out[k].address = addr;
        out[k].module = rec->path;
        out[k].offset = addr - rec->base;
    }
    return n;
}

/* One stack merged: each eval-loop frame of the native part replaced by the Python frames it ran
 * (pymerge.h), the rest after the native frames. 0, or -1 out of memory (the stack unchanged). */
static int merge_stack(struct vsp_symbolizer *s, struct vsp_stack *st)
{
    unsigned n = vsp_native_frames(st->frames, st->nframes);
    if (n == st->nframes)
        return 0;
    uint64_t *frames = malloc(st->nframes * sizeof *frames);
    int *module = malloc(st->nframes * sizeof *module);
    struct vsp_frame_info *fi = malloc(8 * sizeof *fi);
    if (!frames || !module || !fi) {
        free(frames);
        free(module);
        free(fi);
        return -1;
    }
    struct vsp_pymerge pm = {st->frames + n, st->nframes - n, 0};
    unsigned out = 0;
    for (unsigned i = 0; i < n; i++) {
        int nf = pm.next < pm.m ? vsp_sym_frame(s, st, i, fi, 8) : 0;
        if (nf > 0 && vsp_is_eval_frame(fi[nf - 1].function)) {
            unsigned first, cnt = vsp_pymerge_take(&pm, &first);
            for (unsigned k = 0; k < cnt; k++) {
                frames[out] = pm.py[first + k];
                module[out++] = -1;
            }
            continue;
        }
        frames[out] = st->frames[i];
        module[out++] = st->module[i];
    }
    for (unsigned k = pm.next; k < pm.m; k++) {
        frames[out] = pm.py[k];
        module[out++] = -1;
    }
    free(fi);
    free(st->frames);
    free(st->module);
    st->frames = frames;
    st->module = module;
    st->nframes = out;
    return 0;
}

void vsp_sym_merge_python(struct vsp_symbolizer *s, struct vsp_analysis *a)
{
    if (!s || !a->npycodes)
        return;
    for (size_t i = 0; i < a->nstacks; i++)
        if (merge_stack(s, &a->stacks[i]) < 0)
            warn(s, "%s: out of memory: Python frames left after the native frames", "merging stacks");
}

const char *vsp_sym_warnings(const struct vsp_symbolizer *s)
{
    return s->warnings ? s->warnings : "";
}

void vsp_sym_free(struct vsp_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].dwfl)
            dwfl_end(s->files[i].dwfl);
    free(s->files);
    free(s->mods);
    free(s->sysroot);
    free(s->debug_dir);
    free(s->debuginfo_path);
    free(s->warnings);
    free(s);
}
