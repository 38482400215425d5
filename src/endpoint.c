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
