/*
 * cpu.c - how many physical cores this machine has: the default thread count,
 * since two hyper-threads of one core share its SIMD units and gain little on
 * matrix products.
 */
#include "core.h"

#include <stdio.h>
#include <unistd.h>

int hr_cpu_cores(void) {
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (n_cpu < 1) n_cpu = 1;
    /* Count distinct (package, core) pairs from sysfs; fall back to CPUs. */
    enum { MAX_CPU = 1024 };
    unsigned long long seen[MAX_CPU];
    int n_seen = 0;
    for (long cpu = 0; cpu < n_cpu && cpu < MAX_CPU; cpu++) {
        char path[128];
        unsigned pkg = 0, core = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id",
                 cpu);
        FILE *f = fopen(path, "r");
        if (!f) return (int)n_cpu;
        int ok = fscanf(f, "%u", &pkg) == 1; // NOLINT(cert-err34-c): the kernel's number, counted
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_id", cpu);
        f = fopen(path, "r");
        if (!f) return (int)n_cpu;
        ok = ok && fscanf(f, "%u", &core) == 1; // NOLINT(cert-err34-c): as above
        fclose(f);
        if (!ok) return (int)n_cpu;
        unsigned long long key = ((unsigned long long)pkg << 32) | core;
        int dup = 0;
        for (int i = 0; i < n_seen && !dup; i++) dup = seen[i] == key;
        if (!dup) seen[n_seen++] = key;
    }
    return n_seen > 0 ? n_seen : (int)n_cpu;
}
