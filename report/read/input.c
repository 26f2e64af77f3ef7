/* See input.h. A named FIFO opened for reading blocks in open() until a writer comes, which may be
 * never: the report would hang. Opened non-blocking, then made blocking again, it is read like a
 * file while a writer is there (a process substitution, <(...)), and reads as empty (end of file)
 * when none is. */
#include "report/read/input.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *vsp_input_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat sb;
    int fl = fcntl(fd, F_GETFL);
    if (fstat(fd, &sb) < 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        errno = EISDIR;
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}
