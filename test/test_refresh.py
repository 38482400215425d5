"""Scheduled refreshes for real: pg_cron (preloaded by the test command,
background-worker mode) refreshes a materialized view of the CRM, and a
refresh that fails is recorded as failed and keeps the view's old rows."""

import time

from lib import Checker, fault, make_db, psql, psql_script, reset

DB = "rollout_refresh"
c = Checker()
reset()
make_db(DB, "retry_base_ms '10', retry_max_ms '40', max_retries '1'")
rc, out, err, _ = psql_script("""
CREATE MATERIALIZED VIEW crm_snapshot AS SELECT id, first_name, last_name FROM people;
CREATE UNIQUE INDEX ON crm_snapshot (id);
ALTER FOREIGN TABLE people OPTIONS (ADD page_size '10');
""", DB)
c.check("materialized view over the CRM", rc == 0, err)
psql("CREATE EXTENSION IF NOT EXISTS pg_cron")


def run_job(name, command, timeout=150):
    """Schedule command every minute in DB; wait for its first run to end."""
    psql(f"SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '{name}'")
    rc, jobid, err, _ = psql(f"SELECT cron.schedule_in_database('{name}', '* * * * *', "
                             f"$${command}$$, '{DB}')")
    if rc != 0:
        return None, err
    deadline = time.time() + timeout
    row = ""
    while time.time() < deadline:
        _, row, _, _ = psql(f"SELECT status, return_message FROM cron.job_run_details "
                            f"WHERE jobid = {jobid} AND status IN ('succeeded', 'failed') "
                            f"ORDER BY runid LIMIT 1")
        if row:
            break
        time.sleep(1)
    psql(f"SELECT cron.unschedule({jobid})")
    return row, ""


# === a scheduled refresh brings the CRM's new rows
reset(people=40)
row, err = run_job("rollout_refresh_ok", "REFRESH MATERIALIZED VIEW CONCURRENTLY crm_snapshot")
_, n, _, _ = psql("SELECT count(*) FROM crm_snapshot", DB)
c.check("pg_cron ran the refresh and recorded it as succeeded",
        row is not None and row.startswith("succeeded"), f"{row} {err}")
c.check("the view has the CRM's 40 rows", n == "40", n)

# === a refresh that fails is recorded as failed; the view keeps its rows
reset(people=50)
fault(path="^/api/people$", query="offset=|next=", status=500)
row, err = run_job("rollout_refresh_fail", "REFRESH MATERIALIZED VIEW CONCURRENTLY crm_snapshot")
_, n, _, _ = psql("SELECT count(*) FROM crm_snapshot", DB)
c.check("pg_cron recorded the failed refresh as failed, with the API error",
        row is not None and row.startswith("failed") and "HTTP 500" in row, f"{row} {err}")
c.check("the view still has its 40 rows", n == "40", n)

reset()
psql(f"DROP DATABASE {DB}")
c.finish()
