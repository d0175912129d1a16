"""The portable SQL every batch job is written in (可移植SQL): one text that DuckDB and Spark run alike.

DuckDB and Spark SQL agree on most of ANSI SQL but differ in places that change results silently. Jobs'
SQL keeps to the common part below; where the two dialects spell a needed operation differently, the job
calls one of the `PORTABLE_FUNCTIONS`, which every engine defines in its own dialect before a query runs.
`tests/unit/data/test_batch_dialect.py` runs each rule on both engines, so a difference shows up as a
failing test rather than as a different number.

Rules:
- Identifiers in double quotes (`c."limit"`); strings in single quotes. (Spark runs with
  `spark.sql.ansi.doubleQuotedIdentifiers`.) No `::` casts, `QUALIFY`, `* EXCLUDE`, `arg_max`/`arg_min`,
  `//` or `div`: use `CAST`, a filtering subquery, explicit column lists, `max_by`/`min_by` and `ml_div`.
- Money stays DECIMAL: add, subtract and multiply decimals, then `CAST(... AS DECIMAL(p, s))` to the
  scale wanted: both engines round half away from zero (half-up) on that cast and in `round(decimal, n)`.
  Never divide a decimal by a decimal in SQL (DuckDB answers a DOUBLE, Spark a DECIMAL): multiply by an
  exact rate, or divide outside SQL with `decimal.Decimal`. A result column's type is set by an explicit
  `CAST` (the engines widen decimal products differently: DECIMAL(18,4) x DECIMAL(18,4) is DECIMAL(18,8)
  on DuckDB and DECIMAL(37,8) on Spark).
- Fractions are DOUBLE from the start: `CAST(1 AS DOUBLE)`, never the literal `1.0` (a DECIMAL whose
  `avg` Spark rounds to a few places and DuckDB does not).
- `CAST(double AS BIGINT)` rounds on DuckDB and truncates on Spark: use `floor`, `ceil` or `round` first.
  Integer division is `ml_div(a, b)` (towards zero); `a / b` is a DOUBLE on both.
- Dates: `d - INTERVAL n MONTH` (wrapped in `CAST(... AS DATE)`) clamps to the month's end on both;
  differences in days, full months and full years are `ml_day_diff`, `ml_month_diff` and `ml_year_diff`;
  the end of a day as a UTC timestamp is `ml_day_end(d)`. Both engines run in UTC.
- Order: `ORDER BY` names every key needed for a total order and says `NULLS FIRST`/`NULLS LAST` where a
  key can be empty (both engines also default to Spark's rule: nulls first ascending, last descending).
- Ties: `max_by(value, key)` with equal keys may pick either value on either engine; keys must be unique
  within a group for a result to be defined.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortableFunction:
    """A function jobs call by one name, defined per dialect (arguments typed for Spark's SQL functions)."""

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str
    duckdb: str
    spark: str
    doc: str

    def duckdb_ddl(self) -> str:
        args = ", ".join(p for p, _ in self.params)
        return f"CREATE OR REPLACE TEMP MACRO {self.name}({args}) AS ({self.duckdb})"

    def spark_ddl(self) -> str:
        args = ", ".join(f"{p} {t}" for p, t in self.params)
        return f"CREATE OR REPLACE TEMPORARY FUNCTION {self.name}({args}) RETURNS {self.returns} RETURN {self.spark}"


_DATES = (("start_day", "DATE"), ("end_day", "DATE"))

PORTABLE_FUNCTIONS: tuple[PortableFunction, ...] = (
    PortableFunction(
        "ml_day_diff", _DATES, "BIGINT",
        "CAST(date_diff('day', start_day, end_day) AS BIGINT)",
        "CAST(datediff(end_day, start_day) AS BIGINT)",
        "Days from start_day to end_day (negative when end_day is earlier).",
    ),
    PortableFunction(
        "ml_month_diff", _DATES, "BIGINT",
        "CAST(datesub('month', start_day, end_day) AS BIGINT)",
        # timestampdiff alone says 0 from 31 Jan to 29 Feb; DuckDB (and adding months with the month-end
        # clamp) says 1: one more month counts when adding it does not pass end_day
        "CAST(CASE WHEN add_months(start_day, CAST(timestampdiff(MONTH, start_day, end_day) + 1 AS INT)) "
        "<= end_day THEN timestampdiff(MONTH, start_day, end_day) + 1 "
        "ELSE timestampdiff(MONTH, start_day, end_day) END AS BIGINT)",
        "Full months from start_day to an end_day on or after it; a month from the 31st ends on a shorter "
        "month's last day (31 Jan to 29 Feb is 1, 29 Feb to 28 Mar is 0).",
    ),
    PortableFunction(
        "ml_year_diff", _DATES, "BIGINT",
        "CAST(datesub('year', start_day, end_day) AS BIGINT)",
        "CAST(CASE WHEN add_months(start_day, CAST(12 * (timestampdiff(YEAR, start_day, end_day) + 1) AS INT)) "
        "<= end_day THEN timestampdiff(YEAR, start_day, end_day) + 1 "
        "ELSE timestampdiff(YEAR, start_day, end_day) END AS BIGINT)",
        "Full years from start_day to an end_day on or after it (an age in years; born on 29 Feb, a year "
        "is full on 28 Feb of a common year).",
    ),
    PortableFunction(
        "ml_day_end", (("day", "DATE"),), "TIMESTAMP",
        "CAST(day AS TIMESTAMPTZ) + INTERVAL 1 DAY",
        "CAST(day AS TIMESTAMP) + INTERVAL 1 DAY",
        "The end of the day (midnight after it) as a UTC timestamp, for comparing event times with a date.",
    ),
    PortableFunction(
        "ml_div", (("dividend", "BIGINT"), ("divisor", "BIGINT")), "BIGINT",
        "CAST(CASE WHEN (dividend < 0) = (divisor < 0) THEN abs(dividend) // abs(divisor) "
        "ELSE -(abs(dividend) // abs(divisor)) END AS BIGINT)",
        "CAST(dividend div divisor AS BIGINT)",
        "Integer division rounded towards zero (-7 / 2 is -3); empty when the divisor is 0 on DuckDB, an "
        "error on Spark: guard the divisor.",
    ),
)
