/* Test program: a plugin host that loads a CUDA plugin (PLUGIN, which links the CUDA runtime),
 * allocates and frees through it, unloads it — the plugin, its runtime and (with
 * VSP_FAKE_UNLOAD_DRIVER=1, closed by the runtime's destructor) the driver all leave the process —
 * then maps anonymous memory filled with 0xCC (int3) over every page they occupied, so that any
 * pointer kept into them traps, and loads the plugin again and allocates again (issue #10).
 * MODE is "local" (RTLD_LOCAL, as Python and most plugin hosts) or "global" (RTLD_GLOBAL).
 * stdout: the CUDA result codes. stderr: "unloaded plugin=P runtime=R driver=D", 1 where every
 * page of that library was free again and refilled (0: something kept it mapped).
 * usage: prog_plugin_reload PLUGIN MODE */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { PLUGIN, RUNTIME, DRIVER, NTAGS };
static const char *const tag_names[NTAGS] = {"plugin", "runtime", "driver"};

struct range {
    uintptr_t lo, hi;
    int tag;
};
static struct range ranges[64];
static int nranges;
static const char *plugin_base;

static int tag_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    if (!strcmp(base, plugin_base))
        return PLUGIN;
    if (!strncmp(base, "libcudart.so", 12))
        return RUNTIME;
    if (!strcmp(base, "libcuda.so.1"))
        return DRIVER;
    return -1;
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    int tag = info->dlpi_name ? tag_of(info->dlpi_name) : -1;
    if (tag < 0)
        return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum && nranges < 64; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        ranges[nranges++] = (struct range){lo, hi, tag};
    }
    return 0;
}

/* Fill every page of the old ranges that is free again; 1 per tag when all of its pages were. */
static void refill(int all_free[NTAGS])
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int t = 0; t < NTAGS; t++)
        all_free[t] = 0;
    int seen[NTAGS] = {0}, busy[NTAGS] = {0};
    for (int i = 0; i < nranges; i++) {
        seen[ranges[i].tag] = 1;
        for (uintptr_t a = ranges[i].lo; a < ranges[i].hi; a += page) {
            void *p = mmap((void *)a, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                           -1, 0);
            if (p != (void *)a) {
                if (p != MAP_FAILED)
                    munmap(p, page); /* a kernel without MAP_FIXED_NOREPLACE placed it elsewhere */
                busy[ranges[i].tag] = 1;
                continue;
            }
            memset(p, 0xCC, page);
            mprotect(p, page, PROT_READ | PROT_EXEC);
        }
    }
    for (int t = 0; t < NTAGS; t++)
        all_free[t] = seen[t] && !busy[t];
}

struct plug {
    void *h;
    int (*malloc_)(size_t, void **);
    int (*free_)(void *);
};

static int load(struct plug *p, const char *path, int flags)
{
    p->h = dlopen(path, RTLD_NOW | flags);
    if (!p->h) {
        fprintf(stderr, "%s\n", dlerror());
        return -1;
    }
    p->malloc_ = (int (*)(size_t, void **))dlsym(p->h, "plug_malloc");
    p->free_ = (int (*)(void *))dlsym(p->h, "plug_free");
    return p->malloc_ && p->free_ ? 0 : -1;
}

int main(int argc, char **argv)
{
    alarm(60);
    if (argc < 3)
        return 2;
    int flags = !strcmp(argv[2], "global") ? RTLD_GLOBAL : RTLD_LOCAL;
    const char *slash = strrchr(argv[1], '/');
    plugin_base = slash ? slash + 1 : argv[1];
    struct plug p;
    if (load(&p, argv[1], flags) < 0)
        return 2;
    void *a = NULL;
    int m1 = p.malloc_(1 << 20, &a);
    int f1 = p.free_(a);
    printf("first malloc %d free %d\n", m1, f1);
    fflush(stdout);
    dl_iterate_phdr(collect, NULL);
    dlclose(p.h);
    int all_free[NTAGS];
    refill(all_free);
    fprintf(stderr, "unloaded %s=%d %s=%d %s=%d\n", tag_names[PLUGIN], all_free[PLUGIN], tag_names[RUNTIME],
            all_free[RUNTIME], tag_names[DRIVER], all_free[DRIVER]);
    if (load(&p, argv[1], flags) < 0)
        return 2;
    void *b = NULL;
    int m2 = p.malloc_(2 << 20, &b);
    int f2 = p.free_(b);
    printf("second malloc %d free %d\n", m2, f2);
    dlclose(p.h);
    return m1 || f1 || m2 || f2;
}
