/* Test program: a CPython extension module (import vspext) whose shared object links the CUDA
 * runtime (the fake libcudart.so.13). Python loads extension modules RTLD_LOCAL, so the runtime
 * is outside the global scope (issue #10). Compiled by tests/test_shim_shapes.c at run time
 * against the Python headers of the python3 on PATH:
 *   cc -shared -fPIC -I<python include> -o DIR/vspext.so vspext.c -L<fakes> -l:libcudart.so.13
 * The two runtime functions are declared here rather than taken from cuda_runtime_api.h, so that
 * only Python's headers are needed (cudaError_t is an int-sized enum). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

int cudaMalloc(void **devPtr, size_t size);
int cudaFree(void *devPtr);

/* cudaMalloc 1 MiB, cudaFree, cudaMalloc 2 MiB kept (a planted leak: the report must name this
 * function). */
__attribute__((noinline)) void vspext_alloc_free(int *codes)
{
    void *a = NULL, *b = NULL;
    codes[0] = cudaMalloc(&a, 1 << 20);
    codes[1] = cudaFree(a);
    codes[2] = cudaMalloc(&b, 2 << 20);
}

static PyObject *alloc_free(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    int c[3];
    vspext_alloc_free(c);
    return Py_BuildValue("(iii)", c[0], c[1], c[2]);
}

/* cudaMalloc(size) with the GIL held, as a framework's allocator does (issue 21: the stack
 * carries the Python frames of the caller); the memory is kept. Returns the result code. */
static PyObject *alloc(PyObject *self, PyObject *arg)
{
    (void)self;
    size_t size = PyLong_AsSize_t(arg);
    if (size == (size_t)-1 && PyErr_Occurred())
        return NULL;
    void *p = NULL;
    return PyLong_FromLong(cudaMalloc(&p, size));
}

static PyMethodDef methods[] = {
    {"alloc", alloc, METH_O, "cudaMalloc(size), kept; the result code"},
    {"alloc_free", alloc_free, METH_NOARGS, "cudaMalloc, cudaFree, cudaMalloc (leaked); the three codes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "vspext", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_vspext(void)
{
    return PyModule_Create(&module);
}
