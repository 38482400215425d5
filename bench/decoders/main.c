/*
 * main.c: time one candidate over the captured pages.
 *
 *   ./decoders CANDIDATE REPS DIR
 *
 * Reads DIR/page_*.json (in name order) into padded buffers, decodes
 * every page once to check and hash (the checksum must be the same for
 * every candidate), then REPS more times under CLOCK_PROCESS_CPUTIME_ID.
 * Prints one line: candidate, pages, bytes, records, ns per page, MB/s,
 * checksum.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define PADDING 64

typedef struct Page
{
	char	   *buf;
	size_t		len;
} Page;

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
run(const char *cand, Page *pg, Out *o)
{
	if (strcmp(cand, "pglex") == 0)
		return decode_pglex(pg->buf, pg->len, o);
	if (strcmp(cand, "pgparse") == 0)
		return decode_pgparse(pg->buf, pg->len, o);
	if (strcmp(cand, "yajl") == 0)
		return decode_yajl(pg->buf, pg->len, o);
	if (strcmp(cand, "simdjson") == 0)
		return decode_simdjson(pg->buf, pg->len, pg->len + PADDING, o);
	if (strcmp(cand, "simdjson_avx2") == 0)
		return decode_simdjson_avx2(pg->buf, pg->len, pg->len + PADDING, o);
	if (strcmp(cand, "jansson") == 0)
		return decode_jansson(pg->buf, pg->len, o);
	fprintf(stderr, "unknown candidate %s\n", cand);
	exit(2);
}

static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	const char *cand;
	int			reps;
	DIR		   *d;
	struct dirent *e;
	char	  **names = NULL;
	int			n = 0;
	Page	   *pages;
	size_t		bytes = 0;
	long		records = 0;
	uint64_t	sum = 0;
	double		t0, t1;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s CANDIDATE REPS DIR\n", argv[0]);
		return 2;
	}
	cand = argv[1];
	reps = atoi(argv[2]);
	if ((d = opendir(argv[3])) == NULL)
	{
		perror(argv[3]);
		return 2;
	}
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "page_", 5) == 0)
		{
			names = realloc(names, sizeof(char *) * (n + 1));
			names[n] = malloc(strlen(argv[3]) + strlen(e->d_name) + 2);
			sprintf(names[n++], "%s/%s", argv[3], e->d_name);
		}
	closedir(d);
	qsort(names, n, sizeof(char *), by_name);
	pages = calloc(n, sizeof(Page));
	for (int i = 0; i < n; i++)
	{
		FILE	   *f = fopen(names[i], "rb");
		long		len;

		if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0)
		{
			perror(names[i]);
			return 2;
		}
		rewind(f);
		pages[i].buf = calloc(1, len + PADDING);
		pages[i].len = len;
		if (fread(pages[i].buf, 1, len, f) != (size_t) len)
			return 2;
		fclose(f);
		bytes += len;
	}

	/* the check pass: every page decodes, the values are hashed */
	for (int i = 0; i < n; i++)
	{
		Out			o;

		out_begin(&o);
		arena_reset();
		if (run(cand, &pages[i], &o) != 0)
		{
			fprintf(stderr, "%s: %s does not decode\n", cand, names[i]);
			return 1;
		}
		if (!o.hashed)
			out_end(&o);
		sum = sum * 1000003 ^ o.h;
		records += o.records;
	}

	hashing = 0;
	t0 = cpu_ns();
	for (int r = 0; r < reps; r++)
		for (int i = 0; i < n; i++)
		{
			Out			o;

			out_begin(&o);
			arena_reset();
			if (run(cand, &pages[i], &o) != 0)
				return 1;
			if (!o.hashed)
				out_end(&o);
		}
	t1 = cpu_ns();
	printf("%s %d %zu %ld %.0f %.1f %016llx\n", cand, n, bytes, records,
		   (t1 - t0) / ((double) reps * n),
		   (double) bytes * reps / ((t1 - t0) / 1e9) / 1e6,
		   (unsigned long long) sum);
	return 0;
}
