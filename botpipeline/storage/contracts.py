"""Schema contracts: each lake table's columns and DuckDB types, checked at every write.

A table's contract is recorded by its first write (``_lake/schemas/<schema>.<table>.json``, a
file people can read and edit) and every later write must match it by name and type, in any
column order. Without this, one partition writing a column as text would silently turn the
whole column of the analysts' view (which unions partitions by name) from INTEGER to VARCHAR.

- A column whose values are all NULL is typed ``"NULL"`` by whatever wrote it; it takes the
  contract's type (that is not drift, just an empty day). A contract recorded from such a
  write leaves the type open, and the first write with values fills it in.
- A missing column, or a column of another type, fails the write with a message naming it.
- A new column fails too, unless the change is made explicit: ``write(..., evolve=True)`` in
  code, or ``"allow_new_columns": true`` in the contract file (``botpipeline lake evolve
  schema.table`` sets it; the next write records the new columns and clears it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

NULL_TYPE = '"NULL"'


class SchemaDrift(ValueError):
    """A write does not match its table's contract."""


@dataclass(frozen=True)
class Contract:
    table: str
    columns: dict[str, str]
    allow_new_columns: bool = False

    def to_json(self) -> str:
        return json.dumps({"table": self.table,
                           "columns": [{"name": n, "type": t} for n, t in self.columns.items()],
                           "allow_new_columns": self.allow_new_columns,
                           "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                          indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Contract:
        raw = json.loads(text)
        return cls(raw["table"], {c["name"]: c["type"] for c in raw["columns"]},
                   bool(raw.get("allow_new_columns", False)))


@dataclass(frozen=True)
class Verdict:
    """What a write must do: ``casts`` for all-NULL columns, and the contract to record
    (None when the recorded one stands)."""
    casts: dict[str, str]
    record: Contract | None


def judge(table: str, written: dict[str, str], contract: Contract | None, *,
          partition: str | None, evolve: bool = False) -> Verdict:
    """Compare the columns a write produced (name -> DuckDB type) with the contract."""
    where = f"{table}" + (f" (partition {partition})" if partition else "")
    if contract is None:
        return Verdict({}, Contract(table, dict(written)))
    problems = []
    casts = {}
    filled = {}
    for name, expected in contract.columns.items():
        got = written.get(name)
        if got is None:
            problems.append(f"column {name!r} ({expected}) is missing")
        elif got == NULL_TYPE:
            if expected != NULL_TYPE:
                casts[name] = expected
        elif expected == NULL_TYPE:
            filled[name] = got
        elif got != expected:
            problems.append(f"column {name!r} is {got}, the contract says {expected}")
    new = {n: t for n, t in written.items() if n not in contract.columns}
    if new and not (evolve or contract.allow_new_columns):
        problems.append("new column(s) " + ", ".join(f"{n!r} ({t})" for n, t in new.items())
                        + " not in the contract; additive changes are explicit: "
                        + f"`botpipeline lake evolve {table}` or write(..., evolve=True)")
    if problems:
        raise SchemaDrift(f"{where} does not match its schema contract: "
                          + "; ".join(problems) + ". Nothing was committed.")
    if new or filled:
        columns = {**contract.columns, **filled, **new}
        return Verdict(casts, Contract(table, columns))
    return Verdict(casts, None)
