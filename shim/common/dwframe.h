/* Expanding one return address inside a libdwfl module into its frames: the function from the
 * symbol table, demangled; file:line; the chain of inlined calls from the DWARF scopes. Used by
 * the report (report/analyze/symbolize.c) and the in-process symboliser (shim/inproc/symhelper.c). */
#ifndef VSP_DWFRAME_H
#define VSP_DWFRAME_H

#include <elfutils/libdwfl.h>

#include "shim/common/frameinfo.h"

/* out[0].address/module/offset are the caller's; fills out[0..n-1] and returns n >= 1. */
int vsp_dw_frame(Dwfl_Module *mod, uint64_t addr, struct vsp_frame_info *out, int max);

#endif
