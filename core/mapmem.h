/* mapmem.h - releasing a mapped file's pages from this process's resident
 * memory.
 *
 * LMDB reads through a shared read-only map of its data file; every page
 * read stays in the reader's RSS until the process ends, so a process that
 * streams through a growing file (the log's writer and readers, the API
 * reading orders from the cache) grows with the file. LMDB does not tell
 * where its map is (mdb_env_info's address is set only with MDB_FIXEDMAP),
 * so this finds the mappings of a file in /proc/self/maps by device and
 * inode and drops their pages with MADV_DONTNEED: for a shared file map
 * the pages stay in the page cache, and the next touch maps them again.
 */
#ifndef WS_MAPMEM_H
#define WS_MAPMEM_H

/* Releases the resident pages of every mapping of the file open as fd.
 * Returns how many mappings were released, or -1 (errno set) when fd or
 * /proc/self/maps cannot be read. Advisory: callers may ignore failures. */
int mapmem_release(int fd);

#endif
