"""`python -m microlend.risk.starter` rebuilds the shipped starter scorecard."""

from microlend.risk.starter import build_starter

print(build_starter())
