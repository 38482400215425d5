"""make installcheck alone, as packagers run it against a running server,
needs nothing else: without ROLLOUT_TEST_URL it starts the in-tree
emulator around pg_regress (test/with_emulator.sh), and the suite passes.
Runs one suite (upgrade) into a directory of its own."""

import os
import subprocess
import tempfile

from lib import Checker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
c = Checker()
out = tempfile.mkdtemp(prefix="rollout_installcheck_")
env = {k: v for k, v in os.environ.items()
       if k not in ("ROLLOUT_TEST_URL", "ROLLOUT_EMU_BASE")}
p = subprocess.run(["make", "installcheck", "REGRESS=upgrade",
                    f"EXTRA_REGRESS_OPTS=--outputdir={out}"],
                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
text = p.stdout + p.stderr
c.check("make installcheck without ROLLOUT_TEST_URL starts the emulator",
        "starting the in-tree emulator" in text, text[-2000:])
c.check("and the suite passes", p.returncode == 0 and "All 1 tests passed" in text,
        text[-2000:])
subprocess.run(["rm", "-rf", out])
c.finish()
