"""The generated tables agree with the OpenAPI snapshot the repository
carries (api/rollout-crm-openapi.json): regenerating them changes nothing.
Runs outside the cluster; needs only python3."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "api", "rollout-crm-openapi.json")
GENERATED = [("scripts/gen_crm_endpoints.py", "src/crm_endpoints.h"),
             ("scripts/gen_crm_tables.py", "src/crm_tables.h"),
             ("scripts/gen_crm_fields.py", "src/crm_fields.h")]

passed = failed = 0
for script, header in GENERATED:
    out = subprocess.run([sys.executable, os.path.join(ROOT, script), SPEC],
                         capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, header)) as f:
        current = f.read()
    if out.strip() == current.strip():
        passed += 1
        print(f"ok: {header} is what {script} makes of the snapshot")
    else:
        failed += 1
        print(f"FAIL: {header} differs from what {script} makes of the snapshot")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
