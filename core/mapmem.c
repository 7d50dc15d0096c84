/* mapmem.c - releasing a mapped file's resident pages (see mapmem.h). */
#include "mapmem.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int mapmem_release(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    char line[4352];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        unsigned maj, min;
        unsigned long long ino;
        char perm[8];
        /* lo-hi perms offset major:minor inode [path] */
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %x:%x %llu", &lo, &hi, perm, &maj,
                   &min, &ino) != 6)
            continue;
        if (ino != (unsigned long long)st.st_ino || makedev(maj, min) != st.st_dev ||
            perm[3] != 's')
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
            n++;
    }
    fclose(f);
    return n;
}
