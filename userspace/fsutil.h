/* SPDX-License-Identifier: Apache-2.0 */
/* fsutil: small file-system helpers shared by the daemon's parts. */
#ifndef NOVAMON_FSUTIL_H
#define NOVAMON_FSUTIL_H

#include <sys/types.h>

/*
 * mkdir -p: create path and its missing parents (parents 0750, path itself
 * leaf_mode; existing ones are left as they are). Returns 0, -ENAMETOOLONG
 * (over 511 bytes) or the -errno of the mkdir that failed.
 */
int fsutil_mkdirs(const char *path, mode_t leaf_mode);

#endif /* NOVAMON_FSUTIL_H */
