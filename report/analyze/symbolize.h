/* Offline symbolisation of trace stacks with elfutils' libdwfl: function names from ELF symbol
 * tables (static functions included) and DWARF, demangled; file:line and inlined frames where
 * debug information exists; module+offset otherwise. Modules are found at their recorded path,
 * under --sysroot, or by name/build-id under --debug-dir; a module whose build-id differs from
 * the one recorded is reported (its symbols would be wrong). */
#ifndef VSP_SYMBOLIZE_H
#define VSP_SYMBOLIZE_H

#include "report/analyze/analyze.h"
#include "shim/common/frameinfo.h"

struct vsp_symbolizer;


/* opts may be NULL. Never fails: a module that cannot be read just gives module+offset. */
struct vsp_symbolizer *vsp_sym_new(const struct vsp_analysis *a, const char *sysroot, const char *debug_dir);
/* Expand frame i of a stack into up to max frames (inline chain, innermost first). Returns the
 * number written (>= 1). */
int vsp_sym_frame(struct vsp_symbolizer *s, const struct vsp_stack *st, unsigned i, struct vsp_frame_info *out,
                  int max);
/* Python frames (format version 4) in place: every stack of a whose eval-loop frames
 * (_PyEval_EvalFrameDefault) have names gets the Python frames each ran in its place, innermost
 * first (shim/common/pymerge.h); frames past the last eval-loop frame stay after the native ones. Once,
 * right after vsp_sym_new, before anything reads the stacks. A Python frame expands to one
 * vsp_frame_info with python = 1. */
void vsp_sym_merge_python(struct vsp_symbolizer *s, struct vsp_analysis *a);
/* Warnings collected so far (build-id mismatches, unreadable modules), one per line; "" if none. */
const char *vsp_sym_warnings(const struct vsp_symbolizer *s);
void vsp_sym_free(struct vsp_symbolizer *s);

#endif
