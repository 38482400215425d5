"""One psql session whose backend's CPU time is read around each statement.

Session(db).cpu(sql) runs sql and returns (backend CPU seconds, first output
line): utime+stime of the backend (pg_backend_pid, /proc/PID/stat) before
and after the statement."""

import os
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the command name: state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / TICK


class Session:
    MARK = "--end-of-output--"

    def __init__(self, db):
        self.proc = subprocess.Popen(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = int(self.query("SELECT pg_backend_pid()")[0])

    def query(self, sql):
        """Run sql; returns its output lines."""
        self.proc.stdin.write(sql.rstrip().rstrip(";") + f";\n\\echo {self.MARK}\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"psql ended during: {sql}")
            line = line.rstrip("\n")
            if line == self.MARK:
                return lines
            lines.append(line)

    def cpu(self, sql):
        before = cpu_seconds(self.pid)
        lines = self.query(sql)
        return cpu_seconds(self.pid) - before, lines[0] if lines else ""

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
