-- ===================================================================
-- types: JSON -> column type conversions, and conversion errors
-- ===================================================================
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
\! test/emu people '[{"id": 1, "t_str": "hello", "t_num": 42, "t_real": 0.1, "t_bool": true, "t_obj": {"a": [1, 2.5, "x"], "b": null}, "i_num": 7, "i_str": "8", "i_big": 9007199254740993, "n_real": 0.1, "n_big": 123456789.125, "n_str": "12.3400", "n_exp": 1.5e3, "f_num": 1.5, "b_true": true, "b_one": 1, "b_zero": 0, "b_str": "false", "ts": "2025-10-22T15:33:47Z", "ts_ms": "2025-10-22T15:33:47.123+02:00", "d": "1990-05-12", "u": "0199e3ca-2aa4-755a-8b6c-0123456789ab", "arr": ["a", "b c", "{x}"], "arr_i": [1, 2, null], "arr_objs": [{"k": 1}, [2]], "j": {"x": null, "y": [true, 0.5]}, "jscalar": "s", "empty": "", "nul": null}, {"id": "0199e3ca-2aa4-755a-8b6c-0123456789ff", "t_str": "", "arr": [], "j": []}]'
SET timezone = 'UTC';

CREATE FOREIGN TABLE typed (
  id text,
  t_str text, t_num text, t_real text, t_bool text, t_obj text,
  i_num integer, i_str smallint, i_big bigint,
  n_real numeric, n_big numeric, n_str numeric, n_exp numeric, f_num float8,
  b_true boolean, b_one boolean, b_zero boolean, b_str boolean,
  ts timestamptz, ts_ms timestamptz, ts_local timestamp OPTIONS (field 'ts'),
  d date, u uuid,
  arr text[], arr_i int[], arr_objs text[],
  j jsonb, jscalar jsonb, j_json json OPTIONS (field 'j'),
  empty_text text OPTIONS (field 'empty'),
  empty_int integer OPTIONS (field 'empty'),
  empty_ts timestamptz OPTIONS (field 'empty'),
  empty_json jsonb OPTIONS (field 'empty'),
  nul text, missing integer, short varchar(5) OPTIONS (field 't_str')
) SERVER rollout;

-- === every accepted form converts
\x on
SELECT * FROM typed WHERE id = '1';
\x off
-- === a second shape: UUID id, empty string, empty arrays
SELECT id, t_str, t_str IS NULL AS t_str_null, arr, cardinality(arr) AS n, j
FROM typed WHERE id <> '1';

-- === values that do not convert: SQLSTATE, column, record id and value
CREATE FOREIGN TABLE typed_bad (
  id text,
  int_from_text integer OPTIONS (field 't_str'),
  ts_from_text timestamptz OPTIONS (field 't_str'),
  bool_from_two boolean OPTIONS (field 'i_num'),
  int_from_object integer OPTIONS (field 't_obj'),
  arr_from_object text[] OPTIONS (field 't_obj'),
  ints_from_texts int[] OPTIONS (field 'arr'),
  int_overflow integer OPTIONS (field 'i_big'),
  too_long varchar(3) OPTIONS (field 't_str'),
  uuid_from_text uuid OPTIONS (field 't_str'),
  date_from_number date OPTIONS (field 'i_num')
) SERVER rollout;
SELECT int_from_text FROM typed_bad;
SELECT ts_from_text FROM typed_bad;
SELECT bool_from_two FROM typed_bad;
SELECT int_from_object FROM typed_bad;
SELECT arr_from_object FROM typed_bad;
SELECT ints_from_texts FROM typed_bad;
SELECT int_overflow FROM typed_bad;
SELECT too_long FROM typed_bad;
SELECT uuid_from_text FROM typed_bad;
SELECT date_from_number FROM typed_bad;
SELECT c, sqlstate_of(format('SELECT %I FROM typed_bad', c)) AS sqlstate
FROM unnest(ARRAY['int_from_text', 'ts_from_text', 'bool_from_two',
                  'int_from_object', 'int_overflow']) AS c;
-- a long value is truncated in the context line
\! test/emu people '[{"id": 5, "long": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]'
CREATE FOREIGN TABLE typed_long (id text, long integer) SERVER rollout;
\set VERBOSITY terse
SELECT sqlstate_of('SELECT * FROM typed_long') AS sqlstate;
\set VERBOSITY default
SELECT * FROM typed_long;
DROP FOREIGN TABLE typed, typed_bad, typed_long;

\i :abs_srcdir/sql/teardown.inc
