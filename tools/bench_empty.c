/* An empty preloadable library, make bench's start-up yardstick (issue 22): what any LD_PRELOAD
 * costs a process (the loader opening, mapping and relocating one more object), against which the
 * shim's own start-up is stated. */
int vsp_bench_empty;
