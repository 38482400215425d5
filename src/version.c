/*-------------------------------------------------------------------------
 *
 * version.c
 *		  rollout_fdw_version(): the version of the loaded library.
 *
 * The release (e.g. 1.1.0) is compiled in from the Makefile's
 * ROLLOUT_VERSION, the one number META.json and rollout_fdw.control agree
 * with (test/test_meta.py checks it).  It tells which library a backend
 * loaded, which can be newer than the extension's SQL objects
 * (pg_extension.extversion) until ALTER EXTENSION rollout_fdw UPDATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#ifndef ROLLOUT_VERSION
#error "ROLLOUT_VERSION is set by the Makefile"
#endif

PG_FUNCTION_INFO_V1(rollout_fdw_version);

Datum
rollout_fdw_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ROLLOUT_VERSION));
}
