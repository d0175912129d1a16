"""`python -m microlend.risk.starter` rebuilds the shipped starter scorecard; `... expert` the expert scorecard."""

import sys

from microlend.risk.starter import build_expert_starter, build_starter

print(build_expert_starter() if sys.argv[1:] == ["expert"] else build_starter())
