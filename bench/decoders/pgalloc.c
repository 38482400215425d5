/*
 * pgalloc.c: palloc and friends for libpgcommon's frontend JSON parser,
 * served from the per-page arena, as the backend serves them from a memory
 * context reset after each page.  (Linked before libpgcommon.a, so its
 * fe_memutils.o, which would malloc and free each piece, is not used.)
 */
#include <string.h>
#include <stddef.h>

#include "common.h"

void	   *palloc(size_t size);
void	   *palloc0(size_t size);
void	   *palloc_extended(size_t size, int flags);
void	   *repalloc(void *pointer, size_t size);
void		pfree(void *pointer);
char	   *pstrdup(const char *in);
char	   *pnstrdup(const char *in, size_t size);

void *
palloc(size_t size)
{
	size_t	   *p = arena_alloc(size + 16);

	p[0] = size;
	return (char *) p + 16;
}

void *
palloc0(size_t size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

void *
palloc_extended(size_t size, int flags)
{
	return (flags & 0x04) ? palloc0(size) : palloc(size);
}

void *
repalloc(void *pointer, size_t size)
{
	size_t		old = *(size_t *) ((char *) pointer - 16);
	void	   *p;

	if (size <= old)
		return pointer;
	p = palloc(size);
	memcpy(p, pointer, old);
	return p;
}

void
pfree(void *pointer)
{
	(void) pointer;
}

char *
pstrdup(const char *in)
{
	size_t		n = strlen(in);
	char	   *p = palloc(n + 1);

	memcpy(p, in, n + 1);
	return p;
}

char *
pnstrdup(const char *in, size_t size)
{
	size_t		n = strnlen(in, size);
	char	   *p = palloc(n + 1);

	memcpy(p, in, n);
	p[n] = '\0';
	return p;
}
