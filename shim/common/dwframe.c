/* Expanding a return address into frames with libdw (see dwframe.h): the symbol table's name,
 * demangled; file:line; the inline chain from the DWARF scopes, as eu-addr2line -i walks it. The
 * lookup uses address-1: every frame is a return address and the call precedes it. */
#include "shim/common/dwframe.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

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

int vsp_dw_frame(Dwfl_Module *mod, uint64_t addr, struct vsp_frame_info *out, int max)
{
    struct vsp_frame_info *f = &out[0];
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
            o->module = f->module;
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

