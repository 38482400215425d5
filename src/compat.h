/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  What differs between the PostgreSQL versions rollout_fdw builds
 *		  against (15, 16, 17, 18), in one place: each difference is a
 *		  wrapper here, and the rest of the code calls the wrapper.
 *
 *	16: RangeTblEntry.checkAsUser moved to RTEPermissionInfo (the plan
 *		nodes carry the user to check as); pg_foreign_server_aclcheck gave
 *		way to object_aclcheck.
 *	17: create_foreignscan_path and create_foreign_upper_path take the
 *		restriction clauses an FDW path enforces; PGPROC's local transaction
 *		id moved into vxid; the JSON lexer and wait event sets take new
 *		first arguments; extensions name their own wait events.
 *	18: the paths count disabled nodes instead of adding disable_cost;
 *		EXPLAIN's state and property functions have headers of their own;
 *		pg_attribute_noreturn() is gone; base64 works on uint8.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ROLLOUT_COMPAT_H
#define ROLLOUT_COMPAT_H

#include "catalog/pg_foreign_server.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "optimizer/cost.h"
#include "optimizer/pathnode.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

#ifndef pg_attribute_noreturn
#define pg_attribute_noreturn() __attribute__((noreturn))
#endif

/* base64 of common/base64.h: char before 18, uint8 from 18 */
#if PG_VERSION_NUM >= 180000
typedef uint8 rollout_b64_byte;
#else
typedef char rollout_b64_byte;
#endif

/* This backend's local transaction id. */
#if PG_VERSION_NUM >= 170000
#define ROLLOUT_MY_LXID (MyProc->vxid.lxid)
#else
#define ROLLOUT_MY_LXID (MyProc->lxid)
#endif

/*
 * Whether EXPLAIN VERBOSE may deparse a pushed clause that holds an outer
 * row's parameter (from 17, deparsing such a PARAM_EXEC outside its plan
 * crashes: the clause is described instead).
 */
#define ROLLOUT_DEPARSE_EXEC_PARAMS (PG_VERSION_NUM < 170000)

/* A JSON lexer over a string of len bytes (not NUL-terminated). */
static inline JsonLexContext *
rollout_json_lexer(char *json, int len, int encoding, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, need_escapes);
#else
	return makeJsonLexContextCstringLen(json, len, encoding, need_escapes);
#endif
}

/* A wait event set of nevents, owned as this version wants. */
static inline WaitEventSet *
rollout_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(CurrentResourceOwner, nevents);
#else
	return CreateWaitEventSet(CurrentMemoryContext, nevents);
#endif
}

/*
 * The wait event pg_stat_activity shows while the backend waits for the
 * API: from 17 one of our own, by name (registered in shared memory on
 * first use; *cached keeps its id for this backend), before that
 * "Extension".
 */
static inline uint32
rollout_wait_event(uint32 *cached, const char *name)
{
#if PG_VERSION_NUM >= 170000
	if (*cached == 0)
		*cached = WaitEventExtensionNew(name);
	return *cached;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/* USAGE and the like on a foreign server. */
static inline AclResult
rollout_server_aclcheck(Oid serverid, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ForeignServerRelationId, serverid, roleid, mode);
#else
	return pg_foreign_server_aclcheck(serverid, roleid, mode);
#endif
}

/* The user a foreign scan checks as (0: the current user). */
static inline Oid
rollout_scan_check_as(ForeignScanState *node)
{
#if PG_VERSION_NUM >= 160000
	return ((ForeignScan *) node->ss.ps.plan)->checkAsUser;
#else
	return exec_rt_fetch(((ForeignScan *) node->ss.ps.plan)->scan.scanrelid,
						 node->ss.ps.state)->checkAsUser;
#endif
}

/* The user a modified relation checks as (0: the current user). */
static inline Oid
rollout_modify_check_as(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return rinfo->ri_RangeTableIndex > 0 ?
		ExecGetResultRelCheckAsUser(rinfo, estate) : InvalidOid;
#else
	return rinfo->ri_RangeTableIndex > 0 ?
		exec_rt_fetch(rinfo->ri_RangeTableIndex, estate)->checkAsUser :
		InvalidOid;
#endif
}

/*
 * A foreign scan path; disabled: taken only when nothing else answers
 * (disable_cost added before 18, a disabled node from 18).
 */
static inline ForeignPath *
rollout_foreignscan_path(PlannerInfo *root, RelOptInfo *rel, double rows,
						 Cost startup_cost, Cost total_cost,
						 Relids required_outer, List *fdw_private,
						 bool disabled)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows, disabled ? 1 : 0,
								   startup_cost, total_cost, NIL,
								   required_outer, NULL, NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost + (disabled ? disable_cost : 0),
								   NIL, required_outer, NULL, NIL,
								   fdw_private);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost + (disabled ? disable_cost : 0),
								   NIL, required_outer, NULL, fdw_private);
#endif
}

/* A foreign path of an upper relation (the scan with LIMIT and OFFSET). */
static inline ForeignPath *
rollout_foreign_upper_path(PlannerInfo *root, RelOptInfo *rel,
						   PathTarget *target, double rows,
						   Cost startup_cost, Cost total_cost,
						   List *fdw_private)
{
#if PG_VERSION_NUM >= 180000
	return create_foreign_upper_path(root, rel, target, rows, 0,
									 startup_cost, total_cost, NIL, NULL,
									 NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreign_upper_path(root, rel, target, rows, startup_cost,
									 total_cost, NIL, NULL, NIL, fdw_private);
#else
	return create_foreign_upper_path(root, rel, target, rows, startup_cost,
									 total_cost, NIL, NULL, fdw_private);
#endif
}

#endif							/* ROLLOUT_COMPAT_H */
