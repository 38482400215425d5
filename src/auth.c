/*-------------------------------------------------------------------------
 *
 * auth.c
 *		  Minting of the HS512 JWT that authenticates every Rollout request.
 *
 * The token carries iss = client id, sub = user id, iat and exp; it is
 * signed with the client secret.  libjwt allocates with malloc and
 * jwt_encode_str's result is freed with plain free() (libjwt 1.10 has no
 * jwt_free_str).  Neither the secret nor the token ever reaches a message:
 * a failure says only which step failed.
 *
 * libjwt is loaded with dlopen(RTLD_DEEPBIND), not linked: it calls
 * jansson's json_object(), and the postgres executable exports an SQL
 * function of that very name, which would win the symbol lookup and crash
 * the backend.  Deep binding makes libjwt find its own dependencies first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <jwt.h>

#include "rollout_fdw.h"

#ifndef ROLLOUT_JWT_SONAME
#define ROLLOUT_JWT_SONAME "libjwt.so.0"
#endif

/* The libjwt functions we use, resolved once per backend. */
static struct
{
	int			(*new) (jwt_t **);
	void		(*free) (jwt_t *);
	int			(*add_grant) (jwt_t *, const char *, const char *);
	int			(*add_grant_int) (jwt_t *, const char *, long);
	int			(*set_alg) (jwt_t *, jwt_alg_t, const unsigned char *, int);
	char	   *(*encode_str) (jwt_t *);
}			lib;

static void *
resolve(void *handle, const char *name)
{
	void	   *fn = dlsym(handle, name);

	if (fn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not find %s in %s", name, ROLLOUT_JWT_SONAME)));
	return fn;
}

static void
load_libjwt(void)
{
	void	   *handle;

	if (lib.encode_str != NULL)
		return;
	handle = dlopen(ROLLOUT_JWT_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load %s: %s", ROLLOUT_JWT_SONAME, dlerror()),
				 errhint("Install libjwt (Debian package libjwt0).")));
	lib.new = resolve(handle, "jwt_new");
	lib.free = resolve(handle, "jwt_free");
	lib.add_grant = resolve(handle, "jwt_add_grant");
	lib.add_grant_int = resolve(handle, "jwt_add_grant_int");
	lib.set_alg = resolve(handle, "jwt_set_alg");
	lib.encode_str = resolve(handle, "jwt_encode_str");
}

static void
mint_failed(jwt_t *jwt, const char *step, int rc)
{
	if (jwt != NULL)
		lib.free(jwt);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not create the Rollout JWT: %s failed", step),
			 errdetail("libjwt returned %d.", rc)));
}

/*
 * Return a new token in palloc'd memory.  All libjwt objects are freed
 * before anything that can throw.
 */
char *
rollout_mint_jwt(const char *client_id, const char *secret,
				 const char *subject, int64 issued_at, int ttl_s)
{
	jwt_t	   *jwt = NULL;
	char	   *encoded;
	char	   *result;
	int			rc;

	load_libjwt();
	rc = lib.new(&jwt);
	if (rc != 0 || jwt == NULL)
		mint_failed(NULL, "jwt_new", rc);
	if ((rc = lib.add_grant(jwt, "iss", client_id)) != 0)
		mint_failed(jwt, "adding iss", rc);
	if ((rc = lib.add_grant(jwt, "sub", subject)) != 0)
		mint_failed(jwt, "adding sub", rc);
	if ((rc = lib.add_grant_int(jwt, "iat", (long) issued_at)) != 0)
		mint_failed(jwt, "adding iat", rc);
	if ((rc = lib.add_grant_int(jwt, "exp", (long) (issued_at + ttl_s))) != 0)
		mint_failed(jwt, "adding exp", rc);
	rc = lib.set_alg(jwt, JWT_ALG_HS512, (const unsigned char *) secret,
					 (int) strlen(secret));
	if (rc != 0)
		mint_failed(jwt, "setting HS512", rc);

	encoded = lib.encode_str(jwt);
	lib.free(jwt);
	if (encoded == NULL)
		mint_failed(NULL, "encoding", errno);

	PG_TRY();
	{
		result = pstrdup(encoded);
	}
	PG_FINALLY();
	{
		explicit_bzero(encoded, strlen(encoded));
		free(encoded);
	}
	PG_END_TRY();

	return result;
}
