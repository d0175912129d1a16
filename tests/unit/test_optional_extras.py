"""The demo installs the package without its extras: nothing it imports may need them.

`make demo` installs `microlend` alone (no `federation`, no `spark` extra), so the command line, the web app and
the demo's seeding must import when Paillier, PSI and PySpark are missing. Each is made unimportable in a fresh
interpreter (a `None` entry in `sys.modules` makes `import` fail as if it were not installed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

EXTRAS = ("phe", "gmpy2", "private_set_intersection", "openmined_psi", "pyspark")

PROGRAM = """
import sys
for name in {extras!r}:
    sys.modules[name] = None
import microlend.cli.main
import microlend.api.main  # the app itself: creating it imports every page's and route's module
import microlend.demo.seed
import microlend.demo.history
from typer.testing import CliRunner
result = CliRunner().invoke(microlend.cli.main.app, ["demo", "--help"])
assert result.exit_code == 0, result.output
missing = sorted(name for name in {extras!r} if sys.modules.get(name) is not None)
assert not missing, missing
print("ok")
"""


def test_the_demo_the_app_and_the_command_line_import_without_the_extras() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM.format(extras=EXTRAS)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize("extra", ["phe", "pyspark"])
def test_the_check_would_see_an_extra_imported_at_start(extra: str) -> None:
    """The guard itself works: importing a blocked module fails in the same interpreter set-up."""
    program = f"import sys\nsys.modules[{extra!r}] = None\nimport {extra}\n"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and ("ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr)
