/*
 * fmap.c - memory mappings: read-only file mappings, from which model weights
 * are used in place (MAP_PRIVATE, PROT_READ: the page cache is shared between
 * processes and nothing is copied), and anonymous zero pages for buffers that
 * should cost memory only as they fill.
 */
#define _GNU_SOURCE
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

hearth_err hr_map_open(hr_map *map, const char *path) {
    map->data = NULL;
    map->size = 0;
    map->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hr_fail(HEARTH_ERR_IO, "cannot open '%s': %s", path, hr_strerror(errno));
    struct stat st;
    hearth_err err = HEARTH_OK;
    if (fstat(fd, &st) != 0) {
        err = hr_fail(HEARTH_ERR_IO, "cannot stat '%s': %s", path, hr_strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        err = hr_fail(HEARTH_ERR_IO, "'%s' is not a regular file", path);
    } else if (st.st_size == 0) {
        err = hr_fail(HEARTH_ERR_FORMAT, "'%s' is empty", path);
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            err = hr_fail(HEARTH_ERR_IO, "cannot map '%s': %s", path, hr_strerror(errno));
        } else {
            map->data = p;
            map->size = (uint64_t)st.st_size;
            map->fd = fd;
            return HEARTH_OK;
        }
    }
    close(fd);
    return err;
}

void hr_map_close(hr_map *map) {
    if (map->data) {
        munmap((void *)map->data, (size_t)map->size);
        close(map->fd);
    }
    map->data = NULL;
    map->size = 0;
    map->fd = -1;
}

/* Whether [p, p + n) lies in the mapping; *off: p's offset in the file. */
static bool in_map(const hr_map *map, const void *p, size_t n, uint64_t *off) {
    const uint8_t *base = map->data, *c = p;
    if (!base || c < base || n > map->size || (uint64_t)(c - base) > map->size - n) return false;
    *off = (uint64_t)(c - base);
    return true;
}

bool hr_map_read(const hr_map *map, const void *p, size_t n, void *dst) {
    uint64_t off;
    if (!in_map(map, p, n, &off)) return false;
    for (size_t done = 0; done < n;) {
        const ssize_t r = pread(map->fd, (uint8_t *)dst + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        done += (size_t)r;
    }
    return true;
}

void hr_map_release(const hr_map *map, const void *p, size_t n) {
    uint64_t off;
    if (!in_map(map, p, n, &off)) return;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    const uint64_t a = (off + page - 1) / page * page; /* the mapping starts a page */
    const uint64_t b = (off + n) / page * page;
    /* a private read-only file mapping: the pages come back from the file */
    if (a < b) (void)madvise((void *)(map->data + a), (size_t)(b - a), MADV_DONTNEED);
}

void *hr_pages_alloc(size_t bytes) {
    void *p =
        mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        hr_fail(HEARTH_ERR_NOMEM, "cannot map %zu bytes: %s", bytes, hr_strerror(errno));
        return NULL;
    }
    return p;
}

void hr_pages_hint_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

void hr_pages_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}
