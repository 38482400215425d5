/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA crm: a foreign table for each CRM collection,
 *		  with every documented field as a snake_case column of a fitting
 *		  type, plus attrs jsonb holding the whole record.
 *
 * One table per collection of the CRM API: people follows ROLLOUT_API.md
 * section 4 (written here: it has fields the OpenAPI snapshot lacks) and
 * the fields its create and update bodies accept (rating); the
 * others are generated from the OpenAPI snapshot into crm_tables.h by
 * scripts/gen_crm_tables.py.  Each column gets an explicit field option, so
 * the generated DDL says exactly which JSON key it reads.  Nothing from the user mapping (no secret) ever
 * reaches the generated statements.
 *
 * IMPORT's option key_columns 'true' adds to every table the key columns
 * rollout_user_id (field '@user_id') and rollout_credential_id (field
 * '@credential_id'): whose CRM each row is in (fanout.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "nodes/parsenodes.h"

#include "rollout_fdw.h"

typedef struct ImportColumn
{
	const char *name;
	const char *type;
	const char *field;
} ImportColumn;

typedef struct ImportTable
{
	const char *name;			/* table name */
	const char *resource;		/* collection path */
	const ImportColumn *columns;
	int			ncolumns;
} ImportTable;

static const ImportColumn people_columns[] = {
	{"id", "text", "id"},
	{"name", "text", "name"},
	{"first_name", "text", "firstName"},
	{"last_name", "text", "lastName"},
	{"stage", "text", "stage"},
	{"stage_id", "text", "stageId"},
	{"source", "text", "source"},
	{"source_id", "text", "sourceId"},
	{"system_source", "text", "systemSource"},
	{"assigned_user_id", "text", "assignedUserId"},
	{"assigned_pond_id", "text", "assignedPondId"},
	{"office_id", "text", "officeId"},
	{"timeframe_id", "text", "timeframeId"},
	{"tags", "text[]", "tags"},
	{"emails", "jsonb", "emails"},
	{"email_addresses", "text[]", "emails[*].value"},
	{"phones", "jsonb", "phones"},
	{"phone_numbers", "text[]", "phones[*].value"},
	{"addresses", "jsonb", "addresses"},
	{"average_beds", "numeric", "averageBeds"},
	{"average_price", "numeric", "averagePrice"},
	{"birthday", "text", "birthday"},	/* "--03-15" seen: no year */
	{"rating", "numeric", "rating"},
	{"last_activity", "timestamptz", "lastActivity"},
	{"last_activity_type", "text", "lastActivityType"},
	{"contact_types", "text[]", "contactTypes"},
	{"job_title", "text", "jobTitle"},
	{"company_name", "text", "companyName"},
	{"communications_consent", "jsonb", "communicationsConsent"},
	{"original_ids", "jsonb", "originalIds"},
	{"original", "jsonb", "original"},
	{"created", "timestamptz", "created"},
	{"updated", "timestamptz", "updated"},
	{"rollout_updated", "timestamptz", "rolloutUpdated"},
	{"attrs", "jsonb", "*"},
};

#include "crm_tables.h"

static const ImportTable crm_tables[] = {
	{"people", "people", people_columns, lengthof(people_columns)},
	ROLLOUT_GENERATED_TABLES
};

static bool
table_listed(List *tables, const char *name)
{
	ListCell   *lc;

	foreach(lc, tables)
		if (strcmp(((RangeVar *) lfirst(lc))->relname, name) == 0)
			return true;
	return false;
}

static char *
table_ddl(const ImportTable *t, ImportForeignSchemaStmt *stmt,
		  bool key_columns)
{
	StringInfoData buf;
	const char *server = quote_identifier(stmt->server_name);

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s.%s (\n",
					 quote_identifier(stmt->local_schema),
					 quote_identifier(t->name));
	for (int i = 0; i < t->ncolumns; i++)
		appendStringInfo(&buf, "  %s %s OPTIONS (field %s)%s\n",
						 quote_identifier(t->columns[i].name),
						 t->columns[i].type,
						 quote_literal_cstr(t->columns[i].field),
						 i + 1 < t->ncolumns || key_columns ? "," : "");
	if (key_columns)
		appendStringInfoString(&buf,
							   "  rollout_user_id text OPTIONS (field '@user_id'),\n"
							   "  rollout_credential_id text OPTIONS (field '@credential_id')\n");
	appendStringInfo(&buf, ") SERVER %s OPTIONS (resource %s)",
					 server, quote_literal_cstr(t->resource));
	return buf.data;
}

/* The CREATE FOREIGN TABLE statements of IMPORT FOREIGN SCHEMA crm. */
List *
rollout_import_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	List	   *commands = NIL;
	bool		key_columns = false;
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "key_columns") == 0)
			key_columns = defGetBoolean(d);
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA", d->defname),
					 errhint("IMPORT FOREIGN SCHEMA crm takes one option: key_columns.")));
	}
	if (strcmp(stmt->remote_schema, "crm") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist",
						stmt->remote_schema),
				 errhint("rollout_fdw offers one remote schema: crm.")));

	for (int i = 0; i < lengthof(crm_tables); i++)
	{
		const ImportTable *t = &crm_tables[i];

		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO &&
			!table_listed(stmt->table_list, t->name))
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT &&
			table_listed(stmt->table_list, t->name))
			continue;
		commands = lappend(commands, table_ddl(t, stmt, key_columns));
	}
	return commands;
}
