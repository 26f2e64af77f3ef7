/* The report's small inputs (--plan, its model config, --suppress, --purposes): opened so that a
 * FIFO without a writer never blocks the report, read once. */
#ifndef VSP_INPUT_H
#define VSP_INPUT_H

#include <stdio.h>

/* fopen(path, "r") that does not wait for a FIFO's writer: a FIFO or pipe with a writer is read to
 * its end, one without a writer reads as empty. NULL with errno set (EISDIR for a directory). */
FILE *vsp_input_open(const char *path);

#endif
