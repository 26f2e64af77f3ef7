/* vramspy's public API, for programs that want to label their own allocations by purpose
 * (weights, kv_cache, activations...). Every allocation made on this thread between a push and
 * its pop carries the label; the report and the out-of-memory breakdown group bytes by it.
 *
 * The functions are weak references: a program built with this header runs unchanged without
 * the shim (the macros then do nothing). With libvramspy.so preloaded they resolve to it.
 *
 *   VRAMSPY_LABEL_PUSH("kv_cache");
 *   cudaMalloc(&blocks, n);
 *   VRAMSPY_LABEL_POP();
 *
 * Labels nest (up to 16 deep per thread); a label is at most 63 bytes; at most 1023 distinct. */
#ifndef VRAMSPY_VRAMSPY_H
#define VRAMSPY_VRAMSPY_H

#ifdef __cplusplus
extern "C" {
#endif

void vsp_label_push(const char *label) __attribute__((weak));
void vsp_label_pop(void) __attribute__((weak));

#define VRAMSPY_LABEL_PUSH(label)        \
    do {                                 \
        if (vsp_label_push)              \
            vsp_label_push(label);       \
    } while (0)
#define VRAMSPY_LABEL_POP()              \
    do {                                 \
        if (vsp_label_pop)               \
            vsp_label_pop();             \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
