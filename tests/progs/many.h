/* A call chain across many identical libraries (tests/progs/libmany.c): copies of one library,
 * loaded RTLD_LOCAL from different paths, sit at page-aligned addresses with every function at
 * the same offset, the process shape where return addresses coincide in their low bits. step[i]
 * is many_step of the i-th library of the chain; the last calls leaf(arg). */
#ifndef VSP_TEST_MANY_H
#define VSP_TEST_MANY_H

struct many_chain;
typedef void (*many_step_fn)(const struct many_chain *c, int i);
struct many_chain {
    int n;
    void (*leaf)(void *arg);
    void *arg;
    many_step_fn step[256];
};

#endif
