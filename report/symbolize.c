/* Symbolisation (see symbolize.h). One Dwfl per module, created on first use, reporting the ELF
 * file at the load bias recorded in the trace; lookups use address-1 because every frame is a
 * return address and the call instruction precedes it. */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

struct modstate {
    int tried;
    Dwfl *dwfl;
    Dwfl_Module *mod;
};

struct vsp_symbolizer {
    const struct vsp_analysis *a;
    struct modstate *mods;
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

static Dwfl_Module *module_for(struct vsp_symbolizer *s, int m)
{
    struct modstate *ms = &s->mods[m];
    if (ms->tried)
        return ms->mod;
    ms->tried = 1;
    const struct vsp_module *rec = &s->a->modules[m];
    if (!rec->path[0] || strstr(rec->path, "linux-vdso"))
        return NULL;
    char buf[4200];
    const char *file = find_file(s, rec->path, buf, sizeof buf);
    if (!file) {
        warn(s, "module %s: not found (use --sysroot or --debug-dir): frames shown as module+offset", rec->path);
        return NULL;
    }
    ms->dwfl = dwfl_begin(&s->cb);
    if (!ms->dwfl)
        return NULL;
    dwfl_report_begin(ms->dwfl);
    ms->mod = dwfl_report_elf(ms->dwfl, rec->path, file, -1, rec->base, false);
    dwfl_report_end(ms->dwfl, NULL, NULL);
    if (!ms->mod) {
        warn(s, "module %s: not a readable ELF file", rec->path);
        return NULL;
    }
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(ms->mod, &bits, &vaddr);
    if (rec->build_id_len && (n != (int)rec->build_id_len || memcmp(bits, rec->build_id, rec->build_id_len) != 0))
        warn(s, "module %s: build-id differs from the one recorded in the trace: its symbols may be wrong",
             rec->path);
    return ms->mod;
}

static void demangle_into(char *dst, size_t len, const char *name)
{
    if (!name) {
        dst[0] = 0;
        return;
    }
    if (name[0] == '_' && name[1] == 'Z') {
        int status = 0;
        char *d = __cxa_demangle(name, NULL, NULL, &status);
        if (d && status == 0) {
            snprintf(dst, len, "%s", d);
            free(d);
            return;
        }
        free(d);
    }
    snprintf(dst, len, "%s", name);
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *n = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) || dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        n = dwarf_formstring(&attr);
    if (!n)
        n = dwarf_diename(die);
    if (!n && dwarf_attr_integrate(die, DW_AT_name, &attr))
        n = dwarf_formstring(&attr);
    return n;
}

static void basename_into(char *dst, size_t len, const char *path)
{
    if (!path) {
        dst[0] = 0;
        return;
    }
    const char *b = strrchr(path, '/');
    snprintf(dst, len, "%s", b ? b + 1 : path);
}

int vsp_sym_frame(struct vsp_symbolizer *s, const struct vsp_stack *st, unsigned i, struct vsp_frame_info *out, int max)
{
    uint64_t addr = st->frames[i];
    int m = st->module[i];
    struct vsp_frame_info *f = &out[0];
    memset(f, 0, sizeof *f);
    f->address = addr;
    if (m < 0)
        return 1;
    const struct vsp_module *rec = &s->a->modules[m];
    f->module = rec->path;
    f->offset = addr - rec->base;
    Dwfl_Module *mod = module_for(s, m);
    if (!mod)
        return 1;
    uint64_t pc = addr - 1;
    demangle_into(f->function, sizeof f->function, dwfl_module_addrname(mod, pc));
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (line) {
        int lineno = 0;
        const char *src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        basename_into(f->file, sizeof f->file, src);
        f->line = lineno;
    }
    /* Inline chain from the DWARF scopes enclosing pc. */
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, &bias);
    if (!cu)
        return 1;
    Dwarf_Die *scopes = NULL;
    int ns = dwarf_getscopes(cu, pc - bias, &scopes);
    if (ns <= 0) {
        free(scopes);
        return 1;
    }
    /* dwarf_getscopes follows an inlined function's abstract origin outwards; the concrete
     * callers (where it was inlined into) come from the DIE tree above the innermost scope, as
     * eu-addr2line -i does. */
    Dwarf_Die inner = scopes[0];
    free(scopes);
    scopes = NULL;
    ns = dwarf_getscopes_die(&inner, &scopes);
    if (ns <= 0) {
        free(scopes);
        return 1;
    }
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    dwarf_getsrcfiles(cu, &files, &nfiles);
    int n = 0;
    char cur_file[512];
    int cur_line = f->line;
    snprintf(cur_file, sizeof cur_file, "%s", f->file);
    for (int k = 0; k < ns && n < max; k++) {
        int tag = dwarf_tag(&scopes[k]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        struct vsp_frame_info *o = &out[n];
        if (n > 0) {
            memset(o, 0, sizeof *o);
            o->address = addr;
            o->module = rec->path;
            o->offset = f->offset;
        }
        const char *name = die_name(&scopes[k]);
        if (name)
            demangle_into(o->function, sizeof o->function, name);
        else if (n > 0)
            memcpy(o->function, out[0].function, sizeof o->function);
        snprintf(o->file, sizeof o->file, "%s", cur_file);
        o->line = cur_line;
        o->inlined = tag == DW_TAG_inlined_subroutine;
        n++;
        if (tag == DW_TAG_subprogram)
            break;
        /* the next frame out is where this inline was called from */
        Dwarf_Attribute attr;
        Dwarf_Word w;
        cur_line = 0;
        cur_file[0] = 0;
        if (dwarf_attr(&scopes[k], DW_AT_call_line, &attr) && dwarf_formudata(&attr, &w) == 0)
            cur_line = (int)w;
        if (files && dwarf_attr(&scopes[k], DW_AT_call_file, &attr) && dwarf_formudata(&attr, &w) == 0 && w < nfiles)
            basename_into(cur_file, sizeof cur_file, dwarf_filesrc(files, w, NULL, NULL));
    }
    free(scopes);
    return n > 0 ? n : 1;
}

const char *vsp_sym_warnings(const struct vsp_symbolizer *s)
{
    return s->warnings ? s->warnings : "";
}

void vsp_sym_free(struct vsp_symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->a->nmodules; i++)
        if (s->mods[i].dwfl)
            dwfl_end(s->mods[i].dwfl);
    free(s->mods);
    free(s->sysroot);
    free(s->debug_dir);
    free(s->debuginfo_path);
    free(s->warnings);
    free(s);
}
