/* SPDX-License-Identifier: Apache-2.0 */
/* lws_alloc: see lws_alloc.h. */
#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lws_alloc.h"

/* In front of every block: what it holds and where it came from. 16 bytes: malloc's alignment. */
struct lws_alloc_head {
	size_t size; /* asked for */
	size_t mapped; /* bytes of the mapping; 0: from malloc() */
};

static size_t lws_alloc_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static struct lws_alloc_head *lws_alloc_new(size_t size)
{
	struct lws_alloc_head *h;
	size_t total;

	if (size > SIZE_MAX - sizeof(*h) - lws_alloc_page())
		return NULL;
	total = sizeof(*h) + size;
	if (size < LWS_ALLOC_MAPPED) {
		h = malloc(total);
		if (!h)
			return NULL;
		h->mapped = 0;
	} else {
		total = (total + lws_alloc_page() - 1) & ~(lws_alloc_page() - 1);
		h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (h == MAP_FAILED)
			return NULL;
		h->mapped = total;
	}
	h->size = size;
	return h;
}

static void lws_alloc_release(struct lws_alloc_head *h)
{
	if (!h)
		return;
	if (h->mapped)
		munmap(h, h->mapped);
	else
		free(h);
}

void *lws_alloc__realloc(void *ptr, size_t size, const char *reason)
{
	struct lws_alloc_head *h = ptr ? (struct lws_alloc_head *)ptr - 1 : NULL;
	struct lws_alloc_head *n;

	(void)reason;
	if (!size) {
		lws_alloc_release(h);
		return NULL;
	}
	/* a small block that stays small: malloc's realloc may grow it in place */
	if (h && !h->mapped && size < LWS_ALLOC_MAPPED) {
		n = realloc(h, sizeof(*n) + size);
		if (!n)
			return NULL;
		n->size = size;
		return n + 1;
	}
	/* a mapping that still has room */
	if (h && h->mapped && size >= LWS_ALLOC_MAPPED && sizeof(*h) + size <= h->mapped) {
		h->size = size;
		return h + 1;
	}
	n = lws_alloc_new(size);
	if (!n)
		return NULL;
	if (h) {
		memcpy(n + 1, h + 1, h->size < size ? h->size : size);
		lws_alloc_release(h);
	}
	return n + 1;
}

void lws_alloc__install(void)
{
	lws_set_allocator(lws_alloc__realloc);
}
