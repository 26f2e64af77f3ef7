/* Test program (issue 21, hostile shapes): a process that exports CPython's C API as a 3.12
 * interpreter would, but whose structures are not laid out as 3.12's: its thread state's frame
 * pointer leads to a "code object" whose name pointer is junk (an unmapped address). An embedded
 * or custom-built interpreter can look like this to the shim. The shim's layout check must fail
 * (through its checked copies) and nothing may follow the unchecked offsets: the process runs as
 * without the shim, its allocation recorded; the C API walk names the one frame its API gives
 * (names "?", the API has none; line 7).
 * Exported with -rdynamic, found by the shim with dlsym(RTLD_DEFAULT). Prints each result. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *pyobj;
/* the type objects: only their addresses matter to the shim */
char PyCode_Type[64], PyUnicode_Type[64], PyBytes_Type[64];

static char interp[64];
static uint64_t code[32];   /* a "code object": its type, then junk where 3.12 keeps its name */
static uint64_t iframe[16]; /* a 3.12 interpreter frame: f_code at 0, previous 8, owner at 70 */
static uint64_t cframe[4];  /* current_frame at 0 */
static uint64_t tstate[32]; /* cframe at 56 */
static uint64_t frameobj[8];

const char *Py_GetVersion(void) { return "3.12.0 (fake, laid out differently)"; }
int PyGILState_Check(void) { return 1; }
pyobj PyGILState_GetThisThreadState(void) { return tstate; }
pyobj PyThreadState_GetUnchecked(void) { return tstate; }
int Py_IsFinalizing(void) { return 0; }
pyobj PyThreadState_GetInterpreter(pyobj ts) { return ts == tstate ? interp : NULL; }
pyobj PyInterpreterState_Main(void) { return interp; }
pyobj PyThreadState_GetFrame(pyobj ts) { return ts == tstate ? frameobj : NULL; }
pyobj PyFrame_GetBack(pyobj f) { (void)f; return NULL; }
pyobj PyFrame_GetCode(pyobj f) { (void)f; return code; }
int PyFrame_GetLineNumber(pyobj f) { (void)f; return 7; }
int PyFrame_GetLasti(pyobj f) { (void)f; return 0; }
void Py_IncRef(pyobj o) { (void)o; }
void Py_DecRef(pyobj o) { (void)o; }
pyobj PyObject_GetAttrString(pyobj o, const char *name) { (void)o; (void)name; return NULL; }
const char *PyUnicode_AsUTF8AndSize(pyobj o, long *n) { (void)o; (void)n; return NULL; }
long PyLong_AsLong(pyobj o) { (void)o; return 0; }
void PyErr_Fetch(pyobj *a, pyobj *b, pyobj *c) { *a = *b = *c = NULL; }
void PyErr_Restore(pyobj a, pyobj b, pyobj c) { (void)a; (void)b; (void)c; }
int PyGC_Disable(void) { return 0; }
int PyGC_Enable(void) { return 0; }

int main(void)
{
    code[1] = (uint64_t)(uintptr_t)PyCode_Type;
    for (int i = 2; i < 32; i++)
        code[i] = 0x8; /* unmapped: the name, file and line table "pointers" of 3.12's layout */
    iframe[0] = (uint64_t)(uintptr_t)code;
    cframe[0] = (uint64_t)(uintptr_t)iframe;
    tstate[7] = (uint64_t)(uintptr_t)cframe; /* offset 56 */
    void *p = NULL;
    printf("malloc %d\n", cudaMalloc(&p, 1 << 20));
    printf("free %d\n", cudaFree(p));
    printf("malloc %d\n", cudaMalloc(&p, 2 << 20)); /* kept: a leak with its stack */
    return 0;
}
