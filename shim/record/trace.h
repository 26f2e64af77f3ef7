/* The trace file's life (record/trace.c) as the core and the exit hooks drive it: finalisation,
 * fork, exec. Its accessors that other rooms use (the ring, the live table) are in
 * base/process.h. */
#ifndef VSP_TRACE_H
#define VSP_TRACE_H

#include "shim/base/process.h"

/* The trace's state (T_* in trace.c, atomic); VSP_TRACE_OPEN once the file and ring are set up. */
#define VSP_TRACE_OPEN 2
extern int vsp_trace_state VSP_HIDDEN;

struct vsp_trace;
void vsp_trace_finalize(int quick);       /* at exit: END record, drain, summary (quick: no summary,
                                             no metrics: _exit) */
void vsp_trace_atfork_child(void);
/* Before an exec: the trace is finalised (as by _exit); vsp_trace_exec_failed re-opens it for
 * the calls that follow an exec that returned. */
int vsp_trace_before_exec(void);
void vsp_trace_exec_failed(int finalized);
int vsp_trace_foreign(void);              /* the open trace belongs to another pid (raw fork) */
/* Move fd out of the program's way: close-on-exec, a high number (1000, or half RLIMIT_NOFILE),
 * never 0-2. Returns the new fd (fd itself if it cannot move and is above 2), or -EMFILE after
 * closing it. */
int vsp_fd_park(int fd);

#endif
