/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lws_alloc: the allocator libwebsockets uses (lws_set_allocator()).
 *
 * Blocks of LWS_ALLOC_MAPPED bytes or more come straight from mmap() and go
 * back to the kernel when lws frees them; smaller ones from malloc(). The
 * large ones are mostly the 16 KiB header buffers of requests being parsed
 * (one per connection in its HTTP phase, max_http_header_data) and copies of
 * what the kernel did not take yet: they come in bursts (a thousand
 * dashboards reconnecting after a restart) and, from malloc's heap, stayed
 * resident as holes between the connections' small blocks after the burst,
 * which more than doubled the memory per idle WebSocket connection.
 */
#ifndef NOVAMON_LWS_ALLOC_H
#define NOVAMON_LWS_ALLOC_H

#include <stddef.h>

#define LWS_ALLOC_MAPPED (8u * 1024)

/*
 * lws' allocator contract: ptr NULL allocates size bytes, size 0 frees ptr
 * (returns NULL), otherwise ptr is resized keeping its contents; NULL on
 * failure with ptr untouched. reason is lws' label, unused.
 */
void *lws_alloc__realloc(void *ptr, size_t size, const char *reason);

/*
 * Make lws_alloc__realloc lws' allocator. Before lws allocates anything
 * (its first context); calling it again is harmless.
 */
void lws_alloc__install(void);

#endif /* NOVAMON_LWS_ALLOC_H */
