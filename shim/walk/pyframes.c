/* Python frames in recorded stacks (issue 21; see pyframes.h and docs/trace-format.md, STACK and
 * PYCODE). CPython's C API is looked up with dlsym(RTLD_DEFAULT) at the first stack captured (the
 * process's libpython, or a python3 executable that exports it), never linked; a process without
 * it keeps one "absent" flag and pays one relaxed load per stack.
 *
 * Frames of a thread that released the GIL. Frameworks allocate with the GIL released: PyTorch's
 * operators drop it before they reach the caching allocator, ctypes drops it around every foreign
 * call, and so did every CUDA call of the H200 run (2026-12-04): with a GIL-only walk no real
 * framework stack had a Python frame. A thread that released the GIL cannot run Python until it
 * takes it back, so its own frame chain (tstate -> frames -> code objects, each frame holding a
 * strong reference to its code) is frozen while the hook runs, and immutable fields (a code's
 * names, line table and first line) can be read without the GIL. Nothing else can: no C API call,
 * no reference count, no object made. So the frames are read directly (the "raw" walk, struct
 * offsets per version below, measured from each version's own headers), with or without the GIL:
 * every code object is checked to be one (its type is PyCode_Type), every string to be a str, and
 * the first walk of the process reads through checked copies (process_vm_readv) before any
 * pointer is followed directly. Without the GIL a code object is named without a reference (it
 * may die later and its address be reused): its table key then folds in the addresses of its
 * name, file and line-table objects, so a new code object at the same address is named again
 * rather than given the old name. Finalisation is checked before and after the walk; a daemon
 * thread's state that Py_Finalize frees in between (it does so right after it starts, 3.9-3.12)
 * is a limit: its frames are dropped, but the reads were made. A thread running a sub-interpreter
 * (3.12+, after PyThreadState_Swap) shows the main interpreter's frames that called into it, not
 * the sub-interpreter's.
 *
 * The C API walk, when the layout check fails (an interpreter built another way): Python frames
 * are read only when this thread holds the GIL of the main interpreter (PyGILState_Check, and the
 * thread's own thread state is the one attached), never during finalisation, never on a
 * free-threaded build, through the public C API
 * (PyThreadState_GetFrame, PyFrame_GetBack/GetCode/GetLineNumber, Py_DecRef); the only private
 * reads are the "entry frame" bit of 3.11-3.13 (which Python frames one C call of the eval loop
 * ran), done with offsets checked against the frame's own pointers first. Python allocates
 * (frame objects, name strings) with the host's malloc: fine, nothing of it reaches a CUDA hook.
 * But a frame object that 3.11+ creates for PyFrame_GetBack is tracked by the garbage collector,
 * and 3.11 may run a collection right there, finalisers (__del__) and all: Python code inside a
 * CUDA hook, under the locks of whatever allocator called it (a framework's caching allocator
 * freeing from a finaliser would deadlock on its own mutex), its CUDA calls unrecorded. So the
 * collector is off for the walk (PyGC_Disable/PyGC_Enable, 3.10+), and the exception state is
 * saved and put back around it.
 *
 * Code objects are named once per trace: a lock-free table (stackstore.c) from the object's
 * address to an id; the shim keeps a reference on each named object, so its address never comes
 * back as another code object's. When the table is full an object is named again under a fresh
 * id, without a reference: the name is always right. */
#define _GNU_SOURCE
#include "shim/walk/pyframes.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/walk/unwind.h"
#include "shim/base/stackstore.h"

enum { PY_UNKNOWN = 0, PY_RESOLVING = 1, PY_ABSENT = 2, PY_PRESENT = 3 };
static int py_state; /* atomic: acquire on PRESENT publishes the api table */

typedef void *pyobj;
static struct {
    int minor; /* 3.minor */
    int (*gil_check)(void);
    pyobj (*this_tstate)(void);      /* PyGILState_GetThisThreadState */
    pyobj (*attached_tstate)(void);  /* PyThreadState_GetUnchecked (3.13) / _PyThreadState_UncheckedGet */
    int (*finalizing)(void);         /* Py_IsFinalizing (3.13) / _Py_IsFinalizing */
    pyobj (*tstate_frame)(pyobj);    /* PyThreadState_GetFrame: new reference */
    pyobj (*frame_back)(pyobj);      /* PyFrame_GetBack: new reference */
    pyobj (*frame_code)(pyobj);      /* PyFrame_GetCode: new reference */
    int (*frame_line)(pyobj);        /* PyFrame_GetLineNumber */
    int (*frame_lasti)(pyobj);       /* PyFrame_GetLasti (3.11+): the line cache's key */
    void (*incref)(pyobj);
    void (*decref)(pyobj);
    pyobj (*getattr)(pyobj, const char *);
    const char *(*utf8)(pyobj, ssize_t *);
    long (*as_long)(pyobj);
    void (*err_fetch)(pyobj *, pyobj *, pyobj *);
    void (*err_restore)(pyobj, pyobj, pyobj);
    pyobj (*tstate_interp)(pyobj);   /* PyThreadState_GetInterpreter */
    pyobj (*main_interp)(void);      /* PyInterpreterState_Main */
    int (*gc_disable)(void); /* PyGC_Disable (3.10+): returns whether it was enabled */
    int (*gc_enable)(void);
} api;

/* The raw walk's layout (64-bit release builds): offsets from offsetof() on each version's
 * headers (Include/cpython/pystate.h, frameobject.h, internal/pycore_frame.h, cpython/code.h,
 * cpython/unicodeobject.h); tests/test_pyframes.c runs the walk on every installed 3.9-3.13.
 * 3.9 and 3.10 chain frame objects (f_back, f_lasti; each one a C call of the eval loop of its
 * own); 3.11-3.13 chain interpreter frames (previous, an instruction pointer, an owner). */
enum { LINES_LNOTAB = 0, LINES_310 = 1, LINES_LOCATIONS = 2 };
struct py_layout {
    unsigned ts_frame;      /* PyThreadState: frame (3.9, 3.10), cframe (3.11, 3.12), current_frame (3.13) */
    int via_cframe;         /* ts_frame points to a _PyCFrame whose current_frame is at cf_current */
    unsigned cf_current;
    int objects;            /* frame objects (3.9, 3.10): f_lasti, f_trace and f_lineno below */
    unsigned f_code, f_instr, f_previous, f_owner;
    int f_is_entry;         /* 3.11's is_entry byte; -1: the previous frame's owner says it */
    unsigned f_lasti, f_trace, f_lineno, lasti_unit; /* frame objects: lasti * unit = byte offset */
    int lineno_rule;        /* frame objects: f_lineno is the line when f_trace is set (3.9), when
                             * it is not 0 (3.10: PyFrame_GetLineNumber); 0 from 3.11 */
    unsigned co_filename, co_qualname, co_linetable, co_firstlineno, co_code, co_firsttraceable;
    int lines;              /* LINES_*: the line table's format */
    unsigned co_version;    /* 3.12+: a number no other code object had (0: none) */
    unsigned str_ascii_size, str_compact_size;
};
static const struct py_layout layouts[5] = {
    /* 3.9 */ {.ts_frame = 24, .objects = 1, .f_code = 32, .f_previous = 24, .f_lasti = 104, .f_trace = 80,
               .f_lineno = 108, .lasti_unit = 1, .lineno_rule = 1, .co_filename = 104, .co_qualname = 112 /* co_name */,
               .co_linetable = 120 /* co_lnotab */, .co_firstlineno = 40, .lines = LINES_LNOTAB,
               .str_ascii_size = 48, .str_compact_size = 72},
    /* 3.10 */ {.ts_frame = 24, .objects = 1, .f_code = 32, .f_previous = 24, .f_lasti = 96, .f_trace = 72,
                .f_lineno = 100, .lasti_unit = 2, .lineno_rule = 2, .co_filename = 104, .co_qualname = 112 /* co_name */,
                .co_linetable = 120, .co_firstlineno = 40, .lines = LINES_310,
                .str_ascii_size = 48, .str_compact_size = 72},
    /* 3.11 */ {.ts_frame = 56, .via_cframe = 1, .cf_current = 8, .f_code = 32, .f_instr = 56, .f_previous = 48,
                .f_owner = 69, .f_is_entry = 68, .co_filename = 112, .co_qualname = 128, .co_linetable = 136,
                .co_firstlineno = 72, .co_code = 184, .co_firsttraceable = 168, .lines = LINES_LOCATIONS,
                .str_ascii_size = 48, .str_compact_size = 72},
    /* 3.12 */ {.ts_frame = 56, .via_cframe = 1, .cf_current = 0, .f_code = 0, .f_instr = 56, .f_previous = 8,
                .f_owner = 70, .f_is_entry = -1, .co_filename = 112, .co_qualname = 128, .co_linetable = 136,
                .co_firstlineno = 68, .co_code = 192, .co_firsttraceable = 176, .lines = LINES_LOCATIONS, .co_version = 92,
                .str_ascii_size = 40, .str_compact_size = 56},
    /* 3.13 */ {.ts_frame = 72, .f_code = 0, .f_instr = 56, .f_previous = 8, .f_owner = 70, .f_is_entry = -1,
                .co_filename = 112, .co_qualname = 128, .co_linetable = 136, .co_firstlineno = 68, .co_code = 200,
                .co_firsttraceable = 184, .lines = LINES_LOCATIONS, .co_version = 92,
                .str_ascii_size = 40, .str_compact_size = 56},
};
enum { OWNED_BY_GENERATOR = 1, OWNED_BY_CSTACK = 3 };
static const struct py_layout *lay;   /* NULL: no raw walk (a type not found): the C API walk */
static void *code_type, *str_type, *bytes_type;
/* 0: the first raw walk has not been checked yet; 1: checked, direct reads; -1: failed, off.
 * Atomic: relaxed is enough, each state is a yes/no and nothing is published through it. */
static int raw_checked;

/* The layout may be followed: found, and checked on this process's own frames. Until then (and
 * for good when the check failed) no offset of it is used: not for keys, names or records. */
static inline int raw_ok(void)
{
    return lay && vsp_load_relaxed(&raw_checked) == 1; /* relaxed: see raw_checked */
}

#define CODE_TABLE (1u << 19)
static struct vsp_stackstore codes;
static pyobj *code_by_id; /* id -> the referenced code object (table entries only), for names */

static void *sym(const char *name)
{
    return vsp_real_dlsym ? vsp_real_dlsym(RTLD_DEFAULT, name) : NULL;
}

/* Py_GetVersion's "3.11.7 (main, ...)" (or "3.13.0rc1 ...") -> 11; -1 for anything else */
static int python_minor(const char *v)
{
    if (!v || v[0] != '3' || v[1] != '.' || v[2] < '0' || v[2] > '9')
        return -1;
    char *end;
    long m = strtol(v + 2, &end, 10);
    return m < 100 && (*end == '.' || *end == 'a' || *end == 'b' || *end == 'r' || *end == '+') ? (int)m : -1;
}

static int resolve_api(void)
{
    vsp_resolve_dlsym();
    const char *(*version)(void) = (const char *(*)(void))sym("Py_GetVersion");
    if (!version)
        return 0;
    int minor = python_minor(version());
    if (minor < 9 || minor > 13) {
        vsp_debug("Python %.16s: no Python frames (3.9 to 3.13 are known)", version());
        return 0;
    }
    /* A free-threaded build (3.13t) has no GIL to make the frame walk safe: not proven, off. */
    if (sym("_Py_MergeZeroLocalRefcount") || sym("_Py_DecRefShared")) {
        vsp_debug("free-threaded Python: no Python frames");
        return 0;
    }
    api.minor = minor;
#define NEED(field, name) \
    if (!(*(void **)&api.field = sym(name))) { vsp_debug("Python without %s: no Python frames", name); return 0; }
    NEED(gil_check, "PyGILState_Check");
    NEED(this_tstate, "PyGILState_GetThisThreadState");
    NEED(tstate_frame, "PyThreadState_GetFrame");
    NEED(frame_back, "PyFrame_GetBack");
    NEED(frame_code, "PyFrame_GetCode");
    NEED(frame_line, "PyFrame_GetLineNumber");
    NEED(incref, "Py_IncRef");
    NEED(decref, "Py_DecRef");
    NEED(getattr, "PyObject_GetAttrString");
    NEED(utf8, "PyUnicode_AsUTF8AndSize");
    NEED(as_long, "PyLong_AsLong");
    NEED(err_fetch, "PyErr_Fetch");
    NEED(err_restore, "PyErr_Restore");
    NEED(tstate_interp, "PyThreadState_GetInterpreter");
    NEED(main_interp, "PyInterpreterState_Main");
#undef NEED
    *(void **)&api.frame_lasti = minor >= 11 ? sym("PyFrame_GetLasti") : NULL;
    *(void **)&api.gc_disable = sym("PyGC_Disable");
    *(void **)&api.gc_enable = sym("PyGC_Enable");
    if (minor >= 11 && (!api.gc_disable || !api.gc_enable)) {
        vsp_debug("Python 3.%d without PyGC_Disable: no Python frames", minor);
        return 0;
    }
    *(void **)&api.attached_tstate = sym("PyThreadState_GetUnchecked");
    if (!api.attached_tstate)
        *(void **)&api.attached_tstate = sym("_PyThreadState_UncheckedGet");
    *(void **)&api.finalizing = sym("Py_IsFinalizing");
    if (!api.finalizing)
        *(void **)&api.finalizing = sym("_Py_IsFinalizing");
    if (!api.attached_tstate || !api.finalizing) {
        vsp_debug("Python 3.%d without its thread-state or finalisation query: no Python frames", minor);
        return 0;
    }
    code_type = sym("PyCode_Type");
    str_type = sym("PyUnicode_Type");
    bytes_type = sym("PyBytes_Type");
    if (code_type && str_type && bytes_type)
        lay = &layouts[minor - 9];
    if (vsp_stackstore_init(&codes, CODE_TABLE) < 0)
        return 0;
    void *p = mmap(NULL, CODE_TABLE * 2 * sizeof *code_by_id, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    code_by_id = p == MAP_FAILED ? NULL : p;
    vsp_debug("Python 3.%d: stacks carry Python frames", minor);
    return 1;
}

/* Present, resolving it at the first call. The lookup runs once; a thread that meets another's
 * lookup in progress waits for it a bounded while (below). */
static void line_cache_map(void);

static int python_ready(void)
{
    /* relaxed is enough for the common answers (ABSENT/UNKNOWN); PRESENT is re-read with acquire */
    int s = vsp_load_relaxed(&py_state);
    if (VSP_LIKELY(s == PY_ABSENT))
        return 0;
    if (s == PY_UNKNOWN) {
        if (!vsp_cfg.python) {
            vsp_store_relaxed(&py_state, PY_ABSENT);
            return 0;
        }
        int expected = PY_UNKNOWN;
        if (vsp_cas_acq_rel(&py_state, &expected, PY_RESOLVING)) {
            /* release: the api table and the code table are written before PRESENT is seen */
            int found = resolve_api();
            if (found)
                line_cache_map();
            vsp_store_release(&py_state, found ? PY_PRESENT : PY_ABSENT);
        }
    }
    /* Another thread is resolving: wait for it, a bounded while (yielding), rather than record
     * native frames only. A resolver preempted on a busy machine left a whole thread's 2,001
     * allocations without Python frames (test pyframes::threads_without_the_gil_...). Bounded, not
     * a wait for good: this thread may hold a lock the resolver's dlsym needs (the loader's, in a
     * library's constructor), and then it goes on without Python frames after about 10 ms. */
    for (int i = 0; i < 2000 && vsp_load_relaxed(&py_state) == PY_RESOLVING; i++) {
        struct timespec ts = {0, 5000};
        syscall(SYS_nanosleep, &ts, NULL); /* the system call: libc's is a cancellation point */
    }
    /* acquire: pairs with the release above */
    return vsp_load_acquire(&py_state) == PY_PRESENT;
}

/* Is this thread running Python with the GIL of the main interpreter, outside finalisation? In
 * 3.9-3.11 the attached thread state is the GIL holder of the whole runtime, so it must be this
 * thread's own; in 3.12+ it is per thread. A thread created in C without a thread state has none:
 * native frames only. PyGILState_Check alone says 1 whenever its check is disabled
 * (subinterpreters). The main interpreter only: from 3.12 another may have a GIL of its own, and
 * the line cache and the collector switch rely on one GIL serialising every capture. */
static pyobj thread_with_gil(void)
{
    pyobj ts = api.attached_tstate();
    if (!ts || api.this_tstate() != ts || !api.gil_check() || api.finalizing() ||
        api.tstate_interp(ts) != api.main_interp())
        return NULL;
    return ts;
}

/* 1 when frame f is the outermost Python frame one C call of the eval loop ran. 3.9 and 3.10 run
 * every Python frame in a C call of its own. 3.11-3.13 run Python-to-Python calls inline; the
 * interpreter frame (_PyInterpreterFrame, reached from PyFrameObject.f_frame at offset 24) says
 * so: 3.11 in its is_entry byte, 3.12 and 3.13 by a previous frame owned by the C stack (the eval
 * loop's entry frame, owner FRAME_OWNED_BY_CSTACK = 3). The interpreter frame is first checked to
 * point back at f and at code, so a layout other than the one these offsets describe is not read
 * further: then 1 (one Python frame per eval-loop C frame, as before 3.11). */
static int frame_is_entry(pyobj f, pyobj code)
{
    if (api.minor <= 10)
        return 1;
    const char *ifr = *(char *const *)((const char *)f + 24);
    if (!ifr)
        return 1;
    if (api.minor == 11) {
        if (*(pyobj const *)(ifr + 40) != f || *(pyobj const *)(ifr + 32) != code)
            return 1;
        return *(const unsigned char *)(ifr + 68) != 0;
    }
    if (*(pyobj const *)(ifr + 48) != f || *(pyobj const *)ifr != code)
        return 1;
    const char *prev = *(char *const *)(ifr + 8);
    return !prev || *(const char *)(prev + 70) == 3;
}

/* A str attribute of code as UTF-8 (the interpreter keeps the bytes with the str object, which
 * *hold receives, to drop once they are copied): its length, at most cap-1 bytes; "?" if none. */
static uint32_t attr_text(pyobj code, const char *name, uint32_t cap, pyobj *hold, const char **text)
{
    *hold = api.getattr(code, name);
    ssize_t n = 0;
    *text = *hold ? api.utf8(*hold, &n) : NULL;
    if (!*text || n < 0) {
        *text = "?";
        n = 1;
    }
    return (uint32_t)n < cap ? (uint32_t)n : cap - 1;
}

#define NAME_CAP 1024u

/* The PYCODE record naming code under id. Runs with the GIL; any exception the lookups raise is
 * dropped and the one pending before (if any) put back. Every Python call is made before the
 * record is reserved: nothing but copying happens while it holds its place in the ring. */
static void write_code_record(pyobj code, uint32_t id)
{
    pyobj et, ev, tb, qo, fo, lo;
    const char *qual, *file;
    api.err_fetch(&et, &ev, &tb);
    uint32_t nl = attr_text(code, api.minor >= 11 ? "co_qualname" : "co_name", NAME_CAP, &qo, &qual);
    uint32_t fl = attr_text(code, "co_filename", NAME_CAP, &fo, &file);
    long first = (lo = api.getattr(code, "co_firstlineno")) ? api.as_long(lo) : 0;
    struct vsp_resv res;
    if (vsp_ring_reserve(vsp_trace_ring(), VSP_REC_PYCODE, (uint32_t)sizeof(struct vsp_rec_pycode) + nl + 1 + fl + 1,
                         &res) == 0) {
        struct vsp_rec_pycode *r = res.payload;
        r->id = id;
        r->name_len = nl + 1;
        r->file_len = fl + 1;
        r->firstline = first > 0 ? (uint32_t)first : 0;
        char *p = (char *)(r + 1);
        memcpy(p, qual, nl);
        p[nl] = 0;
        memcpy(p + nl + 1, file, fl);
        p[nl + 1 + fl] = 0;
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
    if (qo)
        api.decref(qo);
    if (fo)
        api.decref(fo);
    if (lo)
        api.decref(lo);
    api.err_restore(et, ev, tb);
}

/* ---- the raw walk: direct reads of the layout above ---- */

#define AT(base, off, type) (*(type const *)((const char *)(base) + (off)))

static inline int is_type(const void *obj, const void *type)
{
    return obj && AT(obj, 8, const void *) == type; /* ob_type follows ob_refcnt */
}

/* A str object's text as UTF-8 into dst (cap bytes with its NUL; dst NULL: only measured): the
 * bytes written, without the NUL, never a partial character. The compact forms only (every name
 * and file name of a code object is one); anything else is "?". A non-ASCII string is encoded from
 * its code points, which never change: its cached UTF-8 copy is not read, since a thread with the
 * GIL may be filling it (the pointer is stored before the bytes). */
static uint32_t raw_str(const void *s, char *dst, uint32_t cap)
{
    static const char unknown[] = "?";
    const char *src = unknown;
    uint64_t len = 1;
    unsigned kind = 0; /* 0: src is ASCII; else code points of kind bytes */
    if (is_type(s, str_type)) {
        uint32_t state = AT(s, 32, uint32_t);
        uint64_t n = AT(s, 16, uint64_t);
        if ((state & 0x20) && (state & 0x40)) { /* compact ASCII: the bytes follow the header */
            src = (const char *)s + lay->str_ascii_size;
            len = n;
        } else if (state & 0x20) { /* compact: 1, 2 or 4 bytes a code point, after the header */
            kind = (state >> 2) & 7;
            src = (const char *)s + lay->str_compact_size;
            len = kind == 1 || kind == 2 || kind == 4 ? n : 0;
        }
    }
    uint32_t out = 0;
    if (!kind) { /* ASCII (or "?"): every byte a whole character */
        out = len < cap ? (uint32_t)len : cap - 1;
        if (dst)
            memcpy(dst, src, out);
    } else {
        for (uint64_t i = 0; i < len; i++) {
            uint32_t c = kind == 1 ? ((const unsigned char *)src)[i]
                         : kind == 2 ? ((const uint16_t *)src)[i] : ((const uint32_t *)src)[i];
            unsigned char b[4];
            unsigned k = c < 0x80 ? (b[0] = (unsigned char)c, 1)
                         : c < 0x800 ? (b[0] = (unsigned char)(0xc0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 0x3f)), 2)
                         : c < 0x10000 ? (b[0] = (unsigned char)(0xe0 | c >> 12), b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f)),
                                          b[2] = (unsigned char)(0x80 | (c & 0x3f)), 3)
                         : (b[0] = (unsigned char)(0xf0 | c >> 18), b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f)),
                            b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (c & 0x3f)), 4);
            if (out + k >= cap)
                break;
            if (dst)
                memcpy(dst + out, b, k);
            out += k;
        }
    }
    if (dst)
        dst[out] = 0;
    return out;
}

/* PyCode_Addr2Line on the location table of 3.11-3.13 (Objects/locations.md): entries of
 * (1 + (first & 7)) code units, a line delta by the entry's kind ((first >> 3) & 15). */
static int varint(const unsigned char **p, const unsigned char *end)
{
    unsigned v = 0, shift = 0, b;
    do {
        if (*p >= end || shift > 28)
            return 0;
        b = *(*p)++;
        v |= (b & 63u) << shift;
        shift += 6;
    } while (b & 64);
    return (int)v;
}

/* 3.9's co_lnotab (PyCode_Addr2Line of 3.9): (address increment, signed line increment) pairs. */
static int lnotab_line(const unsigned char *p, const unsigned char *end, int line, long addr)
{
    long at = 0;
    for (; p + 1 < end; p += 2) {
        at += p[0];
        if (at > addr)
            break;
        line += (signed char)p[1];
    }
    return line;
}

/* 3.10's co_linetable (PEP 626, _PyCode_CheckLineNumber of 3.10): (length, signed line delta)
 * pairs, a delta of -128 meaning no line; empty ranges fold into the next one. */
static int linetable310_line(const unsigned char *p, const unsigned char *end, int line, long addr)
{
    long start, stop = 0;
    int ar_line = -1;
    while (stop <= addr) {
        if (p + 1 >= end)
            return -1;
        do {
            start = stop;
            stop += p[0];
            int ld = (signed char)p[1];
            p += 2;
            ar_line = ld == -128 ? -1 : (line += ld);
        } while (start == stop && p + 1 < end);
    }
    return ar_line;
}

static int raw_line(const void *code, long addr)
{
    int line = AT(code, lay->co_firstlineno, int);
    const void *lt = AT(code, lay->co_linetable, const void *);
    if (addr < 0 || !is_type(lt, bytes_type))
        return line;
    const unsigned char *p = (const unsigned char *)lt + 32, *end = p + AT(lt, 16, int64_t);
    if (lay->lines == LINES_LNOTAB)
        return lnotab_line(p, end, line, addr);
    if (lay->lines == LINES_310)
        return linetable310_line(p, end, line, addr);
    long at = 0;
    while (p < end) {
        unsigned first = *p++, kind = (first >> 3) & 15;
        int delta = 0;
        if (kind == 13 || kind == 14) {
            unsigned u = (unsigned)varint(&p, end);
            delta = u & 1 ? -(int)(u >> 1) : (int)(u >> 1);
        } else if (kind >= 10 && kind <= 12) {
            delta = (int)kind - 10;
        }
        line += delta;
        at += 2 * (long)((first & 7) + 1);
        if (addr < at)
            return kind == 15 ? -1 : line;
        while (p < end && !(*p & 128))
            p++;
    }
    return -1;
}

/* The innermost frame (object, or interpreter frame from 3.11) this thread runs, or NULL. */
static const char *raw_top(const void *ts)
{
    const char *p = AT(ts, lay->ts_frame, const char *);
    if (lay->via_cframe)
        p = p ? AT(p, lay->cf_current, const char *) : NULL;
    return p;
}

/* A frame PyFrame_GetBack and PyThreadState_GetFrame skip: the eval loop's entry frame (owned by
 * the C stack, 3.12+) or one that has not reached its first traceable instruction. */
static int raw_incomplete(const char *f, const char *code)
{
    if (lay->objects) /* a frame object is complete once it is on the chain */
        return 0;
    char owner = AT(f, lay->f_owner, char);
    if (lay->f_is_entry < 0 && owner == OWNED_BY_CSTACK)
        return 1;
    if (owner == OWNED_BY_GENERATOR)
        return 0;
    return AT(f, lay->f_instr, const char *) < code + lay->co_code + 2 * (long)AT(code, lay->co_firsttraceable, int);
}

static int raw_entry(const char *f)
{
    if (lay->objects) /* 3.9, 3.10: every Python frame is a C call of the eval loop of its own */
        return 1;
    if (lay->f_is_entry >= 0)
        return AT(f, lay->f_is_entry, unsigned char) != 0;
    const char *prev = AT(f, lay->f_previous, const char *);
    return !prev || AT(prev, lay->f_owner, char) == OWNED_BY_CSTACK;
}

/* Checked copy through the kernel: 0, or -1 when the memory is not readable. */
static int ck(const void *src, void *dst, size_t n)
{
    struct iovec l = {dst, n}, r = {(void *)(uintptr_t)src, n};
    return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -1;
}

/* The layout's check, once a process: this thread's frames read through checked copies, every
 * code object, name and line table of the type it must have. 1 good, 0 no frame to check yet,
 * -1 the layout is not this interpreter's (or the kernel refuses the copies). */
static int raw_validate(const void *ts)
{
    const char *f;
    if (ck((const char *)ts + lay->ts_frame, &f, sizeof f))
        return -1;
    if (lay->via_cframe && f && ck(f + lay->cf_current, &f, sizeof f))
        return -1;
    int seen = 0;
    for (int i = 0; f && i < 64; i++) {
        const char *code, *obj;
        char owner;
        const void *ty;
        if (ck(f + lay->f_code, &code, sizeof code) || ck(f + lay->f_owner, &owner, 1))
            return -1;
        if (lay->objects || !(lay->f_is_entry < 0 && owner == OWNED_BY_CSTACK)) {
            if (ck(code + 8, &ty, sizeof ty) || ty != code_type)
                return -1;
            const unsigned offs[3] = {lay->co_qualname, lay->co_filename, lay->co_linetable};
            for (int k = 0; k < 3; k++)
                if (ck(code + offs[k], &obj, sizeof obj) || ck(obj + 8, &ty, sizeof ty) ||
                    ty != (k == 2 ? bytes_type : str_type))
                    return -1;
            /* the numbers the walk reads must be plausible too: a first line, an instruction
             * offset (lasti of a frame object; an instruction pointer into the code from 3.11) */
            int first, lasti = 0;
            const char *instr;
            if (ck(code + lay->co_firstlineno, &first, sizeof first) || first < 0 || first > (1 << 24))
                return -1;
            if (lay->objects ? ck(f + lay->f_lasti, &lasti, sizeof lasti)
                             : ck(f + lay->f_instr, &instr, sizeof instr) ||
                                   ((lasti = (int)((instr - (code + lay->co_code)) / 2)), 0))
                return -1;
            if (lasti < -1 || lasti > (1 << 24))
                return -1;
            seen++;
        }
        if (ck(f + lay->f_previous, &f, sizeof f))
            return -1;
    }
    return seen ? 1 : 0;
}

static inline uint64_t mix64(uint64_t x)
{
    /* a bijection (murmur3's finaliser): distinct addresses get distinct keys, none 0 but 0's */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* The PYCODE record naming code under id, read directly (the raw walk: no C API call, so it
 * needs no GIL). The lengths are measured first: the record holds its place in the ring only
 * while the names are copied. */
static void write_code_record_raw(const void *code, uint32_t id)
{
    const void *q = AT(code, lay->co_qualname, const void *), *f = AT(code, lay->co_filename, const void *);
    uint32_t nl = raw_str(q, NULL, NAME_CAP), fl = raw_str(f, NULL, NAME_CAP);
    int first = AT(code, lay->co_firstlineno, int);
    struct vsp_resv res;
    if (vsp_ring_reserve(vsp_trace_ring(), VSP_REC_PYCODE, (uint32_t)sizeof(struct vsp_rec_pycode) + nl + 1 + fl + 1,
                         &res) == 0) {
        struct vsp_rec_pycode *r = res.payload;
        r->id = id;
        r->name_len = nl + 1;
        r->file_len = fl + 1;
        r->firstline = first > 0 ? (uint32_t)first : 0;
        char *p = (char *)(r + 1);
        raw_str(q, p, nl + 1);
        raw_str(f, p + nl + 1, fl + 1);
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
}

/* A str's fingerprint: its hash (names are interned, so they have it), else its length and first
 * 8 bytes (inside the object: a str's block is at least 8 bytes longer than its header). */
static uint64_t str_fingerprint(const void *s)
{
    if (!is_type(s, str_type))
        return 0;
    int64_t h = AT(s, 24, int64_t);
    return h != -1 ? (uint64_t)h : AT(s, 16, uint64_t) * 0x100000001b3ull ^ AT(s, lay->str_ascii_size, uint64_t);
}

/* The code table's key. Once the layout is checked it folds in what tells one code object from
 * another that a dead one's address (and, pymalloc reusing blocks in order, its name's, file's
 * and line table's addresses) came back to: from 3.12 co_version, a number no other code object
 * had; before (or once those numbers ran out, 0), the name's and file's hashes, the line table's
 * size and first 8 bytes (inside its block too) and the first line. So a code object named without
 * a reference (no GIL) that dies is never taken for the next one at its address. The same key with
 * and without the GIL, so one code object has one id. Computed for every frame of every capture
 * (it keys the line cache): loads and multiplies only. */
static uint64_t code_key(pyobj code)
{
    uint64_t k = (uint64_t)(uintptr_t)code;
    if (raw_ok()) {
        uint32_t version = lay->co_version ? AT(code, lay->co_version, uint32_t) : 0;
        if (version) {
            k ^= (uint64_t)version << 32;
        } else {
            const void *lt = AT(code, lay->co_linetable, const void *);
            k ^= str_fingerprint(AT(code, lay->co_qualname, const void *)) * 0x9e3779b97f4a7c15ull ^
                 str_fingerprint(AT(code, lay->co_filename, const void *)) * 0xc2b2ae3d27d4eb4full ^
                 (is_type(lt, bytes_type) ? AT(lt, 16, uint64_t) * 0x100000001b3ull ^ AT(lt, 32, uint64_t) : 0) *
                     0x165667b19e3779f9ull ^
                 (uint64_t)(uint32_t)AT(code, lay->co_firstlineno, int) << 3;
        }
    }
    k = mix64(k);
    return k ? k : 1;
}

/* Does this thread hold the GIL (ts: its own state)? Asked only when a code object is new, not at
 * every capture: the two calls cost more than a walk of cached frames. */
static int holds_gil(pyobj ts)
{
    return api.attached_tstate() == ts && api.gil_check();
}

/* *gil: this thread holds the GIL (1), not (0), not asked yet (-1: *ts says whose state to ask
 * about); with it the object can be given a reference (and named through the C API when there is
 * no raw layout). */
static uint32_t code_id(pyobj code, int *gil, pyobj ts)
{
    int is_new = 0;
    struct vsp_stack_slot *claim;
    uint32_t id = vsp_stackstore_intern(&codes, code_key(code), &is_new, &claim);
    if (!is_new)
        return id;
    /* Without a claim (the table is full, or a lookup timed out) the id is a fresh one from the
     * same counter: the object is named again under it. Ids wrap after 2^30 names. */
    id &= VSP_PYFRAME_CODE_MAX;
    if (!id)
        id = 1;
    if (raw_ok())
        write_code_record_raw(code, id);
    else
        write_code_record(code, id); /* the C API walk: the GIL is held */
    if (claim) {
        if (*gil < 0)
            *gil = holds_gil(ts);
        if (*gil) {
            api.incref(code); /* held for the life of the process: the address stays this object's */
            if (code_by_id && id < CODE_TABLE * 2)
                vsp_store_relaxed(&code_by_id[id], code);
        }
        vsp_stackstore_publish(claim, id); /* after the record: see stackstore.h */
    }
    return id;
}

/* Code id and line by (code object, instruction offset). Computing a line reads the code's line
 * table from its start, the better part of a capture's cost in a big function, and the code table
 * costs a probe: a stack walked again at the same instructions (a loop) finds both here. Threads
 * with and without the GIL use it at once, so each entry is a seqlock: a writer makes seq odd with
 * a CAS (a writer that loses skips caching; nobody waits), stores, then makes it even with release;
 * a reader takes seq with acquire, reads, and keeps what it read only if seq is the same even
 * value after an acquire fence. The fields are relaxed atomics (a torn read is thrown away, never
 * used). Keyed by code_key, not by address alone: with the raw layout the key tells a new code
 * object at a dead one's address apart; without it (the C API walk, GIL held) only code objects
 * the shim holds a reference on are cached, as before. */
#define LINE_CACHE 4096u
static struct line_entry {
    uint32_t seq;
    int lasti;
    int line;
    uint32_t id;
    uint64_t key;
} *line_cache; /* LINE_CACHE entries, mapped when Python is found (not in the library's bss) */

static void line_cache_map(void)
{
    if (line_cache)
        return;
    void *m = mmap(NULL, LINE_CACHE * sizeof *line_cache, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED)
        vsp_store_release(&line_cache, (struct line_entry *)m); /* release: zeroed before it is used */
}

static int line_cache_get(struct line_entry *e, uint64_t key, int lasti, int *line, uint32_t *id)
{
    uint32_t s1 = vsp_load_acquire(&e->seq); /* acquire: the fields read below are the writer's */
    if (s1 & 1)
        return 0;
    uint64_t k = vsp_load_relaxed(&e->key);
    int la = vsp_load_relaxed(&e->lasti), li = vsp_load_relaxed(&e->line);
    uint32_t i = vsp_load_relaxed(&e->id);
    __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the field loads happen before seq's re-read */
    if (vsp_load_relaxed(&e->seq) != s1 || k != key || la != lasti)
        return 0;
    *line = li;
    *id = i;
    return 1;
}

static void line_cache_put(struct line_entry *e, uint64_t key, int lasti, int line, uint32_t id)
{
    uint32_t s = vsp_load_relaxed(&e->seq);
    if ((s & 1) || !vsp_cas_acquire(&e->seq, &s, s + 1))
        return;
    /* release fence: no field store below becomes visible before the odd seq (a CAS's acquire
     * orders later loads, not later stores) */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vsp_store_relaxed(&e->key, key);
    vsp_store_relaxed(&e->lasti, lasti);
    vsp_store_relaxed(&e->line, line);
    vsp_store_relaxed(&e->id, id);
    vsp_store_release(&e->seq, s + 2); /* release: the fields are visible before seq is even */
}

/* f is a frame object (C API walk, raw 0) or an interpreter frame (raw walk). gil: this thread
 * holds the GIL. lv (may be NULL): this level of the capture buffer's memo (pyframes.h), looked
 * at first and kept up to date. */
static uint32_t frame_code_line(pyobj f, int raw, pyobj code, int *gil, pyobj ts, int *line, struct vsp_py_level *lv)
{
    int lasti = !raw ? (api.frame_lasti ? api.frame_lasti(f) : -1)
                : lay->objects ? AT(f, lay->f_lasti, int)
                : (int)((AT(f, lay->f_instr, const char *) - ((const char *)code + lay->co_code)) / 2);
    if (raw && lay->lineno_rule &&
        (lay->lineno_rule == 1 ? AT(f, lay->f_trace, const void *) != NULL : AT(f, lay->f_lineno, int) != 0)) {
        /* a traced frame's line is f_lineno (PyFrame_GetLineNumber of 3.9, 3.10): not cached */
        *line = AT(f, lay->f_lineno, int);
        return code_id(code, gil, ts);
    }
    struct line_entry *e = NULL;
    uint64_t key = 0;
    uint32_t id;
    if (lasti >= 0) {
        key = code_key(code);
        /* the level repeats the capture buffer's last one: the same code object (by the same key
         * as the line cache's, so a new one at a dead one's address is not taken for it) at the
         * same instruction */
        if (lv && lv->key == key && lv->lasti == lasti) {
            *line = lv->line;
            return lv->id;
        }
        /* key is mixed already: one multiply spreads the instruction offset into the index bits */
        struct line_entry *lc = vsp_load_acquire(&line_cache); /* acquire: pairs with its publication */
        e = lc ? &lc[((key ^ (uint64_t)(uint32_t)lasti) * 0x9e3779b97f4a7c15ull >> 40) & (LINE_CACHE - 1)] : NULL;
        if (e && line_cache_get(e, key, lasti, line, &id))
            goto found;
    }
    id = code_id(code, gil, ts);
    *line = raw ? raw_line(code, lasti < 0 ? -1 : (long)lasti * (lay->objects ? lay->lasti_unit : 2)) : api.frame_line(f);
    if (!e || !(raw_ok() || (code_by_id && id < CODE_TABLE * 2 && vsp_load_relaxed(&code_by_id[id]) == code)))
        return id; /* not to be cached (nor kept in the memo) */
    line_cache_put(e, key, lasti, *line, id);
found:
    if (lv) {
        lv->key = key;
        lv->lasti = lasti;
        lv->line = *line;
        lv->id = id;
    }
    return id;
}

/* The raw walk: 1 when it ran (*np frames), 0 when the C API walk must do it (the layout's
 * check failed or had nothing to check). Runs with or without the GIL. */
static int raw_capture(uint64_t *out, pyobj *codes_out, unsigned max, unsigned *np, struct vsp_py_memo *pm)
{
    *np = 0;
    pyobj ts = api.this_tstate(); /* the thread's own state, attached or not */
    if (!ts || api.finalizing() || api.tstate_interp(ts) != api.main_interp())
        return 1;
    int gil = -1; /* asked when a code object is new (holds_gil) */
    int checked = vsp_load_relaxed(&raw_checked); /* relaxed: see raw_checked */
    if (!checked) {
        int v = raw_validate(ts);
        if (v < 0) {
            vsp_store_relaxed(&raw_checked, -1);
            vsp_debug("Python 3.%d: its frames are not laid out as this shim knows; Python frames only "
                      "with the GIL held", api.minor);
            return 0;
        }
        if (!v)
            return 0;
        vsp_store_relaxed(&raw_checked, 1);
    }
    unsigned n = 0;
    const char *f = raw_top(ts);
    for (unsigned hops = 0; f && n < max && hops < 4 * VSP_MAX_DEPTH; hops++, f = AT(f, lay->f_previous, const char *)) {
        if (lay->f_is_entry < 0 && AT(f, lay->f_owner, char) == OWNED_BY_CSTACK)
            continue;
        const char *code = AT(f, lay->f_code, const char *);
        if (!is_type(code, code_type))
            break;
        if (raw_incomplete(f, code))
            continue;
        int line;
        uint32_t id = frame_code_line((pyobj)f, 1, (pyobj)code, &gil, ts, &line, pm && n < VSP_PY_MEMO ? &pm->lv[n] : NULL);
        codes_out[n] = (pyobj)code;
        out[n++] = VSP_PYFRAME(id, line > 0 ? (uint32_t)line : 0u, raw_entry(f));
    }
    /* Py_Finalize frees other threads' states right after it starts (3.9-3.12): a walk that began
     * before it is kept only if it still has not started (a state freed under it may have given
     * wrong frames; the reads themselves stay inside memory the allocator keeps mapped). */
    *np = api.finalizing() ? 0 : n;
    return 1;
}

static unsigned py_capture(uint64_t *out, pyobj *codes_out, unsigned max, struct vsp_py_memo *pm);

unsigned vsp_py_capture(uint64_t *out, pyobj *codes_out, unsigned max)
{
    return py_capture(out, codes_out, max, NULL);
}

static unsigned py_capture(uint64_t *out, pyobj *codes_out, unsigned max, struct vsp_py_memo *pm)
{
    if (VSP_LIKELY(!python_ready()) || !max)
        return 0;
    unsigned n = 0;
    if (lay && vsp_load_relaxed(&raw_checked) >= 0 && raw_capture(out, codes_out, max, &n, pm))
        return n;
    pyobj ts = thread_with_gil();
    if (!ts)
        return 0;
    /* 3.9 and 3.10 create no object in the walk (their frames are objects already) */
    int gc_was_on = api.minor >= 11 ? api.gc_disable() : 0;
    pyobj et, ev, tb;
    api.err_fetch(&et, &ev, &tb); /* a frame object that cannot be made raises MemoryError */
    pyobj f = api.tstate_frame(ts);
    int gil_held = 1;
    while (f && n < max) {
        pyobj code = api.frame_code(f);
        int line;
        uint32_t id = frame_code_line(f, 0, code, &gil_held, ts, &line, NULL);
        codes_out[n] = code;
        out[n++] = VSP_PYFRAME(id, line > 0 ? (uint32_t)line : 0u, frame_is_entry(f, code));
        api.decref(code);
        pyobj back = api.frame_back(f);
        api.decref(f);
        f = back;
    }
    if (f)
        api.decref(f);
    api.err_restore(et, ev, tb);
    if (gc_was_on)
        api.gc_enable();
    return n;
}

/* The current capture's code objects, for vsp_py_frame_names while its stack is interned (the
 * purpose rules run then, on this thread): alive for that long (their frames hold them) even when
 * the shim holds no reference. */
static __thread struct {
    const uint64_t *words;
    pyobj const *codes;
    unsigned n;
} cur __attribute__((tls_model("initial-exec")));

/* The Python frames' buffer (2 KiB: the words, and the code objects in its second half) lives in a
 * frame of its own, so that a process without Python does not run the rest of the hook that much
 * deeper on its stack. */
#define PY_MAX (VSP_MAX_DEPTH / 2)
static __attribute__((noinline)) uint32_t stack_id_with_python(const uint64_t *native, unsigned n, uint64_t hash,
                                                               struct vsp_py_memo *pm, unsigned long gen, uint32_t prev)
{
    if (pm && pm->gen != gen) {
        memset(pm, 0, sizeof *pm); /* what it kept belongs to another trace's names */
        pm->gen = gen;
    }
    uint64_t py[2 * PY_MAX];
    pyobj *codes_of = (pyobj *)(py + PY_MAX);
    unsigned m = py_capture(py, codes_of, vsp_cfg.depth < PY_MAX ? vsp_cfg.depth : PY_MAX, pm);
    /* the same native frames (prev) and Python words as the buffer's last capture: the same stack */
    if (prev && pm && m == pm->n && !memcmp(py, pm->words, m * sizeof *py))
        return prev;
    cur.words = py;
    cur.codes = codes_of;
    cur.n = m;
    uint32_t id = vsp_stack_id_parts_hashed(native, n, hash, py, m);
    cur.n = 0;
    if (pm) {
        pm->n = m <= VSP_PY_MEMO ? m : ~0u;
        if (m <= VSP_PY_MEMO)
            memcpy(pm->words, py, m * sizeof *py);
    }
    return id;
}

int vsp_py_absent(void)
{
    return vsp_load_relaxed(&py_state) == PY_ABSENT; /* relaxed: ABSENT is final (but in a fork child) */
}

uint32_t vsp_py_stack_id_hashed(const uint64_t *native, unsigned n, uint64_t hash, struct vsp_py_memo *pm,
                                unsigned long gen, uint32_t prev)
{
    /* relaxed: a hint; python_ready (in the capture) decides with acquire */
    if (VSP_LIKELY(vsp_load_relaxed(&py_state) == PY_ABSENT))
        return vsp_stack_id_parts_hashed(native, n, hash, NULL, 0);
    /* inside the fork bracket: the first capture looks the API up with dlsym (the loader's lock),
     * later ones may call into the interpreter */
    vsp_walk_enter();
    uint32_t id = stack_id_with_python(native, n, hash, pm, gen, prev);
    vsp_walk_leave();
    return id;
}

/* Copy a str attribute of code into dst (cap bytes, NUL-terminated). */
static void copy_attr(pyobj code, const char *name, char *dst, unsigned cap)
{
    pyobj o;
    const char *text;
    uint32_t n = attr_text(code, name, cap, &o, &text);
    memcpy(dst, text, n);
    dst[n] = 0;
    if (o)
        api.decref(o);
}

int vsp_py_frame_names(uint64_t word, char *function, unsigned flen, char *file, unsigned filelen)
{
    uint32_t id = VSP_PYFRAME_CODE(word);
    if (vsp_load_acquire(&py_state) != PY_PRESENT || !flen || !filelen)
        return -1;
    pyobj code = NULL;
    for (unsigned i = 0; i < cur.n && !code; i++)
        if (VSP_PYFRAME_CODE(cur.words[i]) == id)
            code = cur.codes[i];
    if (!code && code_by_id && id < CODE_TABLE * 2)
        code = vsp_load_relaxed(&code_by_id[id]);
    if (!code)
        return -1;
    if (raw_ok()) {
        raw_str(AT(code, lay->co_qualname, const void *), function, flen);
        raw_str(AT(code, lay->co_filename, const void *), file, filelen);
        return 0;
    }
    pyobj et, ev, tb; /* the C API walk made the capture, with the GIL, which this thread still holds */
    api.err_fetch(&et, &ev, &tb);
    copy_attr(code, api.minor >= 11 ? "co_qualname" : "co_name", function, flen);
    copy_attr(code, "co_filename", file, filelen);
    api.err_restore(et, ev, tb);
    return 0;
}

void vsp_py_atfork_child(void)
{
    /* The child's trace is a new file: its code objects are named again (the references the
     * parent's table held stay held: the objects live on in the child's copy of the heap). */
    if (vsp_load_relaxed(&py_state) != PY_PRESENT)
        return;
    vsp_stackstore_destroy(&codes);
    memset(&codes, 0, sizeof codes);
    vsp_stackstore_init(&codes, CODE_TABLE);
    if (code_by_id)
        memset(code_by_id, 0, CODE_TABLE * 2 * sizeof *code_by_id);
    if (line_cache) /* code objects the child's table does not hold */
        memset(line_cache, 0, LINE_CACHE * sizeof *line_cache);
}
