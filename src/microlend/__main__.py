"""`python -m microlend ...` is the `microlend` command; `spark-submit .../microlend/__main__.py ...` runs a
command as a Spark application (see the README, "Past one machine: Spark")."""

from microlend.cli.main import app

if __name__ == "__main__":
    app()
