/* A stand-in for libvramspy-sym.so on a machine without elfutils (issue 23): the file sits beside
 * the shim but needs a library the loader cannot find. Built twice: with VSP_GONE as that library
 * (libvsp_gone.so.1, kept out of every search path), without it as the symboliser that needs it. */
#ifdef VSP_GONE
int vsp_gone_value(void) { return 23; }
#else
int vsp_gone_value(void);
int vsp_symbroken_value(void) { return vsp_gone_value(); }
#endif
