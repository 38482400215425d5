/*-------------------------------------------------------------------------
 *
 * endpoint.c
 *		  Which requests the API has for a collection: the routes of each
 *		  collection of Rollout's OpenAPI snapshot, generated into
 *		  crm_endpoints.h by scripts/gen_crm_endpoints.py.
 *
 * The planner and the executor ask here before they send anything: a
 * table whose collection has no GET by id reads ids through its list, one
 * without PUT or DELETE refuses UPDATE or DELETE when it is planned, a
 * list that requires a query parameter is refused without it.
 *
 * A resource the snapshot does not list (the resource option can name
 * any path) is taken to have the five usual routes, and nothing required:
 * what the extension did before it knew the snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rollout_fdw.h"

#include "crm_endpoints.h"

static const RolloutEndpoint endpoints[] = {
	ROLLOUT_GENERATED_ENDPOINTS
};

static const RolloutEndpoint unknown_endpoint = {
	NULL,
	ROLLOUT_ROUTE_LIST | ROLLOUT_ROUTE_GET | ROLLOUT_ROUTE_CREATE |
	ROLLOUT_ROUTE_UPDATE | ROLLOUT_ROUTE_DELETE,
	NULL, false, false
};

/* The routes of the collection at path resource (never NULL). */
const RolloutEndpoint *
rollout_endpoint(const char *resource)
{
	for (int i = 0; i < lengthof(endpoints); i++)
		if (strcmp(endpoints[i].resource, resource) == 0)
			return &endpoints[i];
	return &unknown_endpoint;
}

/* Does the collection at path resource have every route of routes? */
bool
rollout_endpoint_has(const char *resource, int routes)
{
	return (rollout_endpoint(resource)->routes & routes) == routes;
}

/*
 * The routes of the collection foreign table relid reads.  Only its
 * resource option is read: catalog queries (information_schema.tables)
 * ask this of every table, and must not fail on another option.
 */
const RolloutEndpoint *
rollout_table_endpoint(Oid relid)
{
	ListCell   *lc;

	foreach(lc, GetForeignTable(relid)->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "resource") == 0)
			return rollout_endpoint(defGetString(d));
	}
	return rollout_endpoint("people");	/* the option's default (option.c) */
}

/* The requests the collection at path resource answers, for messages. */
static char *
describe_routes(const char *resource)
{
	static const struct
	{
		int			route;
		const char *format;
	}			shapes[] = {
		{ROLLOUT_ROUTE_LIST, "GET /%s"},
		{ROLLOUT_ROUTE_GET, "GET /%s/{id}"},
		{ROLLOUT_ROUTE_CREATE, "POST /%s"},
		{ROLLOUT_ROUTE_UPDATE, "PUT /%s/{id}"},
		{ROLLOUT_ROUTE_DELETE, "DELETE /%s/{id}"},
	};
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(shapes); i++)
	{
		if (!rollout_endpoint_has(resource, shapes[i].route))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfo(&buf, shapes[i].format, resource);
	}
	return buf.data;
}

/*
 * The commands a foreign table of the collection allows, as
 * IsForeignRelUpdatable answers: INSERT needs POST /{resource}, UPDATE
 * PUT /{resource}/{id}, DELETE DELETE /{resource}/{id} (the rows to change
 * are found by the list, or by GET by id).
 */
int
rollout_endpoint_updatable(const RolloutEndpoint *endpoint)
{
	int			result = 0;

	if (endpoint->routes & ROLLOUT_ROUTE_CREATE)
		result |= 1 << CMD_INSERT;
	if (endpoint->routes & ROLLOUT_ROUTE_UPDATE)
		result |= 1 << CMD_UPDATE;
	if (endpoint->routes & ROLLOUT_ROUTE_DELETE)
		result |= 1 << CMD_DELETE;
	return result;
}

/*
 * Refuse, when it is planned, an INSERT, UPDATE or DELETE the collection
 * has no route for: nothing is sent.
 */
void
rollout_check_modify_route(Relation rel, const char *resource,
						   CmdType operation)
{
	const char *command;
	const char *request;

	switch (operation)
	{
		case CMD_INSERT:
			command = "insert into";
			request = psprintf("POST /%s", resource);
			break;
		case CMD_UPDATE:
			command = "update";
			request = psprintf("PUT /%s/{id}", resource);
			break;
		case CMD_DELETE:
			command = "delete from";
			request = psprintf("DELETE /%s/{id}", resource);
			break;
		default:
			return;
	}
	if (rollout_endpoint_updatable(rollout_endpoint(resource)) & (1 << operation))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s foreign table \"%s\": Rollout's collection \"%s\" has no %s",
					command, RelationGetRelationName(rel), resource, request),
			 errdetail("The collection answers only %s.",
					   describe_routes(resource)),
			 errhint("See \"Collections\" in the rollout_fdw README for what each collection allows.")));
}

/*
 * Refuse a scan of a collection whose list requires a query parameter
 * (GET /textMessages: personId; GET /metadata/transactions/create:
 * transactionType) when the request would go without it: the planner
 * calls this with the names of the query parameters it pushed.
 */
void
rollout_check_required_filter(Oid relid, const char *resource,
							  List *filter_names)
{
	const char *required = rollout_endpoint(resource)->required_param;
	ListCell   *lc;

	if (required == NULL)
		return;
	foreach(lc, filter_names)
		if (strcmp(strVal(lfirst(lc)), required) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED),
			 errmsg("a scan of foreign table \"%s\" needs a condition on %s",
					get_rel_name(relid), required),
			 errdetail("Rollout answers GET /%s only with the query parameter %s.",
					   resource, required),
			 errhint("Add WHERE <the column reading %s> = <a value>, = ANY (<values>), or join on that column.",
					 required)));
}
