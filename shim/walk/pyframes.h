/* Python frames of the allocating thread (issue 21): when the thread runs CPython 3.9-3.13
 * (with or without the GIL), a recorded stack carries the Python frames after its native ones (format
 * version 4, VSP_PYFRAME words) and each code object is named once in a PYCODE record. The
 * interpreter's C API is found with dlsym at the first stack captured, never linked; a process
 * without Python pays one load of a cached flag per stack. VRAMSPY_PYTHON=0 turns it off. */
#ifndef VSP_PYFRAMES_H
#define VSP_PYFRAMES_H

#include <stdint.h>

/* A capture buffer's memory of its last capture with Python present (issue 22: a framework's
 * allocations come from the same Python lines again and again). Per level, the code object's key
 * and instruction offset with the (code id, line) they gave: a level that repeats them takes its
 * word from here, not from the shared line cache (a seqlock read and a hash a frame); and the
 * capture's Python words, so that a capture whose native frames and Python words both repeat
 * keeps the buffer's last stack id (unwind.c keeps that id, as it does without Python) without
 * hashing and interning them. Valid for one trace generation (gen: a forked child names its code
 * objects and stacks again). All zero: nothing remembered. One capture at a time (its buffer is
 * its own). */
#define VSP_PY_MEMO 64
struct vsp_py_memo {
    unsigned long gen; /* the stack store's generation of what is kept */
    unsigned n;        /* the last capture's Python words (more than VSP_PY_MEMO: not kept) */
    uint64_t words[VSP_PY_MEMO];
    struct vsp_py_level {
        uint64_t key; /* code_key (0: nothing) */
        int lasti;
        int line;
        uint32_t id;
    } lv[VSP_PY_MEMO];
};

/* The id of the stack `native[0..n)` (hash: vsp_stack_hash of it) plus, when this thread is running Python (with or without the
 * GIL), its Python frames (at most vsp_cfg.depth and 128, innermost kept); interns and writes new stacks and code
 * names like vsp_stack_id. Takes the fork bracket (vsp_walk_enter) itself when Python is there. memo (may be NULL): the
 * capture buffer's (see above), for the stack store's generation gen; prev: the id the buffer's last capture got when
 * its native frames were these (0 otherwise), kept when the Python words repeat as well. */
uint32_t vsp_py_stack_id_hashed(const uint64_t *native, unsigned n, uint64_t hash, struct vsp_py_memo *memo,
                                unsigned long gen, uint32_t prev);
/* No Python in the process (as far as any capture has found): a stack's id is its native frames'. */
int vsp_py_absent(void);

/* Python frames of this thread into out (innermost first, at most max) and their code objects
 * into codes: 0 when it runs no Python, or Python is absent or off (or, on an interpreter whose
 * layout check failed, when it does not hold the GIL). Writes PYCODE records for code objects not named yet in this trace. */
unsigned vsp_py_capture(uint64_t *out, void **codes, unsigned max);

/* In a forked child: its trace names every code object again. */
void vsp_py_atfork_child(void);

/* The qualified name and file of a Python frame word's code object, for the in-process purpose
 * rules: 0, or -1 when the shim knows no such code object. Only inside the capture (while its
 * stack is interned, on the capturing thread). */
int vsp_py_frame_names(uint64_t word, char *function, unsigned flen, char *file, unsigned filelen);

#endif
