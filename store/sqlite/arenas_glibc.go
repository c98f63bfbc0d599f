//go:build cgo && linux

package sqlite

/*
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rr_limit_arenas(int n) {
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, n);
#endif
}

// rr_arenas counts the C heap's arenas as malloc_info lists them (-1
// where it cannot tell: not glibc, or no memory).
static int rr_arenas(void) {
#ifdef M_ARENA_MAX
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) return -1;
	malloc_info(0, f);
	fclose(f);
	int n = 0;
	for (char *p = buf; (p = strstr(p, "<heap nr=")) != NULL; p++) n++;
	free(buf);
	return n;
#else
	return -1;
#endif
}
*/
import "C"

// maxArenas bounds glibc's malloc arenas, which SQLite allocates from, in
// every process that links the store (init: before threads make arenas).
// glibc gives each thread that calls malloc an arena of its own, up to
// eight per core, and keeps their freed memory: the Go runtime runs cgo
// calls on whichever thread is free, so a gateway that had run a few
// thousand logins held MiBs more than it needed (rrbench: 2-6 KiB per idle
// session at 1000 sessions, in noisy runs). One connection runs
// every statement (Open), so the calls never need more than one arena at
// once; two leave room for the rest of the process's C code.
const maxArenas = 2

// limitArenas sets maxArenas; arenas made before stay.
func limitArenas() { C.rr_limit_arenas(maxArenas) }

// mallocArenas is how many arenas the C heap has (-1: cannot tell).
func mallocArenas() int { return int(C.rr_arenas()) }

func init() { limitArenas() }
