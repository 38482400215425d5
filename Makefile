# rollout_fdw: PostgreSQL foreign data wrapper for the Rollout Universal CRM API
EXTENSION = rollout_fdw
MODULE_big = rollout_fdw
OBJS = src/rollout_fdw.o src/option.o src/connection.o src/api.o \
       src/errors.o src/http.o \
       src/scan.o src/decode.o src/jsonvalue.o src/convert.o \
       src/json.o src/auth.o src/import.o src/modify.o \
       src/ratelimit.o src/stats.o src/pushdown.o \
       src/progress.o
DATA = sql/rollout_fdw--1.0.sql
PGFILEDESC = "rollout_fdw - foreign data wrapper for the Rollout CRM API"

# pg_regress suites (sql/ + expected/); they read the emulator's URL from
# the environment (ROLLOUT_TEST_URL): run them through test/run_tests.sh
REGRESS = setup options scan types byid errors import insert update pushdown

PG_CONFIG ?= pg_config
PKG_CONFIG ?= pkg-config
DEPS = libcurl jansson libjwt

# libjwt is dlopen'ed with RTLD_DEEPBIND (see src/auth.c), not linked
JWT_SONAME ?= libjwt.so.0
PG_CPPFLAGS = $(shell $(PKG_CONFIG) --cflags $(DEPS)) \
	-DROLLOUT_JWT_SONAME='"$(JWT_SONAME)"'
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
