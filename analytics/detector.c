/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "detector.h"

const char *detector_name(enum detector_id id)
{
	switch (id) {
	case DETECTOR_STAT:
		return "stat";
	case DETECTOR_SEASONAL:
		return "seasonal";
	case DETECTOR_IFOREST:
		return "iforest";
	case DETECTOR_GRU:
		return "gru";
	case DETECTOR_COUNT:
		return "ensemble";
	}
	return NULL;
}

int detector_parse(const char *name)
{
	int id;

	if (!name)
		return -EINVAL;
	if (!strcmp(name, "lstm"))
		return DETECTOR_GRU;
	for (id = 0; id <= DETECTOR_COUNT; id++)
		if (!strcmp(name, detector_name(id)))
			return id;
	return -EINVAL;
}
