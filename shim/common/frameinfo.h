/* One symbolised frame, shared by the report's offline symboliser (report/analyze/symbolize.c) and the
 * shim's in-process one (shim/inproc/symhelper.c, loaded on first need): both expand an address with
 * shim/common/dwframe.c, so the out-of-memory breakdown, VRAMSPY_PURPOSES and the report agree on
 * function names (demangled) and inlined frames. */
#ifndef VSP_FRAMEINFO_H
#define VSP_FRAMEINFO_H

#include <stddef.h>
#include <stdint.h>

struct vsp_frame_info {
    uint64_t address;      /* the recorded return address */
    const char *module;    /* module path, NULL if no module covers it */
    uint64_t offset;       /* address - module load bias */
    char function[512];    /* demangled, "" when unknown */
    char file[512];        /* base name, "" when unknown */
    int line;              /* 0 when unknown */
    int inlined;           /* 1: an inlined call inside the next frame */
    int python;            /* 1: a Python frame (function: qualified name, file: co_filename's
                              base name, path: co_filename, line: the current line; no module) */
    const char *path;      /* a Python frame's co_filename as recorded (report only), else NULL */
};

/* The in-process symboliser's one entry point (libvramspy-sym.so): expand the return address
 * addr of this process into up to max frames, innermost (inlined) first; module receives the
 * module's path. Returns the number written (>= 1; out[0].function "" when unknown). */
#define VSP_SYMHELPER_ENTRY "vsp_symhelper_frames"
typedef int (*vsp_symhelper_fn)(uint64_t addr, struct vsp_frame_info *out, int max, char *module, size_t mlen);

#endif
