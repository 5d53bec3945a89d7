/* SPDX-License-Identifier: Apache-2.0 */
/* matcher: compiled label matchers; see matcher.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"
#include "tsdb/matcher.h"

bool tsdb_cmatcher__match(const struct tsdb_cmatcher *cm, const char *value)
{
	bool eq;

	switch (cm->m->type) {
	case TSDB_MATCH_EQ:
		return !strcmp(cm->m->value, value);
	case TSDB_MATCH_NEQ:
		return strcmp(cm->m->value, value) != 0;
	case TSDB_MATCH_RE:
	case TSDB_MATCH_NRE:
		eq = regexec(&cm->re, value, 0, NULL, 0) == 0;
		return cm->m->type == TSDB_MATCH_RE ? eq : !eq;
	}
	return false;
}

int tsdb_cmatcher__init(struct tsdb_cmatcher *cm, const struct tsdb_matcher *m)
{
	char rx_err[128];
	size_t len;
	char *pat;
	int rc;

	memset(cm, 0, sizeof(*cm));
	cm->m = m;
	if (!m->name || !m->value)
		return -EINVAL;
	if (m->type == TSDB_MATCH_RE || m->type == TSDB_MATCH_NRE) {
		len = strlen(m->value);
		pat = malloc(len + 5);
		if (!pat)
			return -ENOMEM;
		memcpy(pat, "^(", 2);
		memcpy(pat + 2, m->value, len);
		memcpy(pat + 2 + len, ")$", 3);
		rc = rx_compile(&cm->re, pat, REG_EXTENDED | REG_NOSUB, rx_err, sizeof(rx_err));
		free(pat);
		if (rc)
			return rc;
		cm->has_re = true;
	} else if (m->type != TSDB_MATCH_EQ && m->type != TSDB_MATCH_NEQ) {
		return -EINVAL;
	}
	cm->matches_empty = tsdb_cmatcher__match(cm, "");
	return 0;
}

void tsdb_cmatcher__fini(struct tsdb_cmatcher *cm)
{
	if (cm->has_re)
		regfree(&cm->re);
	cm->has_re = false;
}
