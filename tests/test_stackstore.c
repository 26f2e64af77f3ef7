/* Unit tests of the stack store (shim/base/stackstore.c): one id per distinct stack, concurrent
 * interning agrees on ids, and a full table still hands out usable ids. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "shim/base/stackstore.h"

/* Intern and, when this call claimed the entry, publish at once (as the shim does after writing
 * the stack record). */
static uint32_t intern_pub(struct vsp_stackstore *s, uint64_t hash, int *is_new)
{
    struct vsp_stack_slot *claim;
    uint32_t id = vsp_stackstore_intern(s, hash, is_new, &claim);
    if (claim)
        vsp_stackstore_publish(claim, id);
    return id;
}

Test(stackstore, same_stack_same_id_and_only_first_is_new)
{
    struct vsp_stackstore s;
    cr_assert_eq(vsp_stackstore_init(&s, 4096), 0);
    uint64_t a[] = {0x401000, 0x402000, 0x403000}, b[] = {0x401000, 0x402000, 0x403004};
    int is_new;
    uint32_t ia = intern_pub(&s, vsp_stack_hash(a, 3), &is_new);
    cr_assert_eq(is_new, 1);
    cr_assert_eq(intern_pub(&s, vsp_stack_hash(a, 3), &is_new), ia);
    cr_assert_eq(is_new, 0);
    uint32_t ib = intern_pub(&s, vsp_stack_hash(b, 3), &is_new);
    cr_assert_eq(is_new, 1);
    cr_assert_neq(ia, ib);
    cr_assert_neq(vsp_stack_hash(a, 2), vsp_stack_hash(a, 3), "depth is part of the hash");
    vsp_stackstore_destroy(&s);
}

static struct vsp_stackstore shared;
static uint32_t ids[4][512];
static int news[4];

static void *interner(void *p)
{
    long t = (long)p;
    for (uint64_t i = 0; i < 512; i++) {
        int is_new;
        uint64_t frames[2] = {i, i * 3};
        ids[t][i] = intern_pub(&shared, vsp_stack_hash(frames, 2), &is_new);
        news[t] += is_new;
    }
    return NULL;
}

Test(stackstore, concurrent_interning_agrees_and_writes_each_stack_once)
{
    cr_assert_eq(vsp_stackstore_init(&shared, 4096), 0);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, interner, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 512; i++)
        for (int k = 1; k < 4; k++)
            cr_assert_eq(ids[k][i], ids[0][i]);
    cr_assert_eq(news[0] + news[1] + news[2] + news[3], 512);
    vsp_stackstore_destroy(&shared);
}

Test(stackstore, full_table_hands_out_fresh_ids)
{
    struct vsp_stackstore s;
    cr_assert_eq(vsp_stackstore_init(&s, 1024), 0);
    uint32_t last = 0;
    for (uint64_t i = 0; i < 5000; i++) {
        int is_new;
        uint64_t f = i + 1;
        uint32_t id = intern_pub(&s, vsp_stack_hash(&f, 1), &is_new);
        cr_assert(id > 0);
        if (i >= 4000) {
            cr_assert_eq(is_new, 1);
            cr_assert_neq(id, last);
        }
        last = id;
    }
    cr_assert_gt(s.overflow, 0);
    vsp_stackstore_destroy(&s);
}
