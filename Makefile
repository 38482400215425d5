# rollout_fdw: PostgreSQL foreign data wrapper for the Rollout Universal CRM API
EXTENSION = rollout_fdw
MODULE_big = rollout_fdw
OBJS = src/rollout_fdw.o src/option.o src/connection.o src/api.o \
       src/errors.o src/http.o \
       src/scan.o src/fanout.o src/keyjoin.o src/decode.o src/jsonvalue.o src/convert.o \
       src/json.o src/auth.o src/import.o src/modify.o src/body.o \
       src/conflict.o \
       src/ratelimit.o src/stats.o src/pushdown.o \
       src/progress.o src/endpoint.o src/tags.o src/webhook.o \
       src/version.o
# the release: rollout_fdw_version() answers it; rollout_fdw.control's
# default_version is its first two numbers, META.json carries it whole
# (test/test_meta.py checks they agree)
ROLLOUT_VERSION = 1.1.0
# every script: each version's full one, and each update
DATA = sql/rollout_fdw--1.0.sql sql/rollout_fdw--1.0--1.1.sql \
       sql/rollout_fdw--1.1.sql
PGFILEDESC = "rollout_fdw - foreign data wrapper for the Rollout CRM API"

# pg_regress suites, as pgvector lays them out: test/sql/NAME.sql and
# test/expected/NAME.out, one suite per file, each standing alone (it starts
# with test/sql/setup.inc and ends with test/sql/teardown.inc), so a new file
# is a new suite.  They drive the emulator (test/emu) and read its URL from
# ROLLOUT_TEST_URL; make installcheck [REGRESS=byid] starts the emulator
# itself when that is not set (README, "Tests").
TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test

PG_CONFIG ?= pg_config
PKG_CONFIG ?= pkg-config
DEPS = libcurl jansson libjwt

# libjwt is dlopen'ed with RTLD_DEEPBIND (see src/auth.c), not linked
JWT_SONAME ?= libjwt.so.0
PG_CPPFLAGS = $(shell $(PKG_CONFIG) --cflags $(DEPS)) \
	-DROLLOUT_JWT_SONAME='"$(JWT_SONAME)"' \
	-DROLLOUT_VERSION='"$(ROLLOUT_VERSION)"'
SHLIB_LINK = $(shell $(PKG_CONFIG) --libs libcurl jansson) -ldl -lm
# PostgreSQL's own headers and PG_TRY macros do not build cleanly with
# -Wextra's unused-parameter, missing-field, sign-compare and clobbered
# warnings; "override" keeps these exceptions even when PG_CFLAGS is given
# on the command line (make PG_CFLAGS="-Wall -Wextra -Werror").
override PG_CFLAGS += -Wall -Wextra -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -Wno-clobbered

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): src/rollout_fdw.h
src/version.o: Makefile
# a VPATH build (pg_buildext's build-NN directory) puts objects in its src/
ifdef VPATH
$(shell mkdir -p src)
endif

# the suites need the emulator: without ROLLOUT_TEST_URL, make installcheck
# starts the in-tree one around pg_regress (test/with_emulator.sh)
# (PGXS's command is: echo "+++ ..." && pg_regress ...; the wrapper goes
# before pg_regress)
ifeq ($(ROLLOUT_TEST_URL),)
pg_regress_installcheck := $(subst && ,&& bash $(srcdir)/test/with_emulator.sh ,$(pg_regress_installcheck))
endif
