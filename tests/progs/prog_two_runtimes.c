/* Test program: a host with two CUDA plugins built against different toolkits, each loaded
 * RTLD_LOCAL: libplug12.so (links libcudart.so.12) and libplug13.so (libcudart.so.13), so two
 * runtimes live in one process (issue #10). Each plugin's calls must reach its own runtime: an
 * out-of-memory in plugin 12 sets runtime 12's last error and not runtime 13's, and each plugin
 * reports its own runtime version. Prints every result; exit 0 when all are as expected.
 * With "global", plugin 13 is loaded RTLD_GLOBAL first, so libcudart.so.13 is in the global scope,
 * which every lookup searches before a local one: plugin 12 still reaches .so.12, because its
 * references require the symbol version libcudart.so.12.
 * usage: prog_two_runtimes PLUG12 PLUG13 [global] */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct plug {
    void *h;
    int (*alloc_free)(int *);
    int (*malloc_)(size_t, void **);
    int (*free_)(void *);
    int (*huge)(void);
    int (*last_error)(void);
    int (*version)(void);
};

static int load(struct plug *p, const char *path, int mode)
{
    p->h = dlopen(path, RTLD_NOW | mode);
    if (!p->h) {
        fprintf(stderr, "%s\n", dlerror());
        return -1;
    }
    p->alloc_free = (int (*)(int *))dlsym(p->h, "plug_alloc_free");
    p->malloc_ = (int (*)(size_t, void **))dlsym(p->h, "plug_malloc");
    p->free_ = (int (*)(void *))dlsym(p->h, "plug_free");
    p->huge = (int (*)(void))dlsym(p->h, "plug_huge");
    p->last_error = (int (*)(void))dlsym(p->h, "plug_last_error");
    p->version = (int (*)(void))dlsym(p->h, "plug_runtime_version");
    return p->alloc_free && p->malloc_ && p->free_ && p->huge && p->last_error && p->version ? 0 : -1;
}

int main(int argc, char **argv)
{
    alarm(60);
    if (argc < 3)
        return 2;
    struct plug p12, p13;
    int global = argc > 3 && argv[3][0] == 'g';
    if (global && load(&p13, argv[2], RTLD_GLOBAL) < 0)
        return 2;
    if (load(&p12, argv[1], RTLD_LOCAL) < 0 || (!global && load(&p13, argv[2], RTLD_LOCAL) < 0))
        return 2;
    int v12 = p12.version(), v13 = p13.version();
    printf("versions %d %d\n", v12, v13);
    void *a = NULL, *b = NULL;
    int m12 = p12.malloc_(1 << 20, &a), m13 = p13.malloc_(2 << 20, &b);
    printf("malloc %d %d\n", m12, m13);
    int f12 = p12.free_(a), f13 = p13.free_(b);
    printf("free %d %d\n", f12, f13);
    int huge = p12.huge();
    int e13 = p13.last_error(), e12 = p12.last_error();
    printf("huge12 %d last13 %d last12 %d\n", huge, e13, e12);
    int ok = v12 == 12080 && v13 == 13000 && !m12 && !m13 && !f12 && !f13 && huge == 2 && e13 == 0 && e12 == 2;
    printf("%s\n", ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
