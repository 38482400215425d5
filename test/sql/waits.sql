-- pg_stat_activity while a backend waits for the API: from PostgreSQL 17
-- the wait events are named, RolloutFdwResponse while requests are in
-- flight and RolloutFdwBackoff while none may be sent yet (rate limit,
-- retry backoff, data not synced); before 17 both are "Extension".  A
-- second session (dblink) runs the scan; this one watches it.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/sql/setup.inc
CREATE EXTENSION dblink;
SELECT format('dbname=%s user=%s host=%s port=%s application_name=rollout_waiter',
              current_database(), current_user,
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS conninfo \gset
SELECT dblink_connect('waiter', :'conninfo');
SELECT current_setting('server_version_num')::int >= 170000 AS named \gset

-- whether the waiter shows wait_event within 10 s
CREATE FUNCTION waiter_shows(wanted text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 200 LOOP
    PERFORM pg_stat_clear_snapshot();  -- else one snapshot a transaction
    PERFORM FROM pg_stat_activity
    WHERE application_name = 'rollout_waiter' AND state = 'active'
      AND wait_event_type = 'Extension' AND wait_event = wanted;
    IF FOUND THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END $$;

-- === waiting for answers: 2 s each
\! test/emu latency 2000
SELECT dblink_send_query('waiter', 'SELECT count(*) FROM people');
SELECT waiter_shows(CASE WHEN :'named'::boolean THEN 'RolloutFdwResponse' ELSE 'Extension' END)
  AS shows_response_wait;
SELECT * FROM dblink_get_result('waiter') AS t(people bigint);
SELECT count(*) AS end_of_result FROM dblink_get_result('waiter') AS t(people bigint);
\! test/emu latency 0

-- === waiting to send again: the data is not synced yet (409) for 3 s
\! test/emu not-ready 3
SELECT dblink_send_query('waiter', 'SELECT count(*) FROM people');
SELECT waiter_shows(CASE WHEN :'named'::boolean THEN 'RolloutFdwBackoff' ELSE 'Extension' END)
  AS shows_backoff_wait;
SELECT * FROM dblink_get_result('waiter') AS t(people bigint);
SELECT count(*) AS end_of_result FROM dblink_get_result('waiter') AS t(people bigint);
\! test/emu not-ready 0

SELECT dblink_disconnect('waiter');
DROP FUNCTION waiter_shows(text);
DROP EXTENSION dblink;

\i :abs_srcdir/sql/teardown.inc
