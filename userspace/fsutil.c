/* SPDX-License-Identifier: Apache-2.0 */
/* fsutil: see fsutil.h. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fsutil.h"

int fsutil_mkdirs(const char *path, mode_t leaf_mode)
{
	char tmp[512], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, leaf_mode) && errno != EEXIST)
		return -errno;
	return 0;
}
