"""Names of a sweep's runs and settings: only the overrides that vary, readable numbers.

A search samples floats such as ``agent.learning_rate=0.0012345678901234567``; labels show
them to 3 significant digits (:func:`short_number`), keys by their last part where that is
unambiguous (``agent.learning_rate`` -> ``learning_rate``), wrapped onto lines of ``width``
for figures. Tables (``width=None``) keep the overrides as given, except numbers, which are
shortened everywhere a person reads them; the CSV and JSON files keep the exact values.
"""

from __future__ import annotations

import math
import textwrap

from mlo_exp.run.sweep.jobs import JobRow
from mlo_exp.run.sweep.seeds import SeedGroup, group_key


def short_number(value: str) -> str:
    """``value`` as written, or to 3 significant digits when it is a long number."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 6 or not math.isfinite(number) else f"{number:.3g}"


def short_override(override: str) -> str:
    """``key=value`` with a long number shortened (:func:`short_number`)."""
    key, sep, value = override.partition("=")
    return f"{key}{sep}{short_number(value)}" if sep else override


def varying_labels(rows: list[JobRow], drop_seed: bool = False,
                   width: int | None = 30) -> list[str]:
    """Per row, only the overrides that differ between rows (``job <n>`` when none do).
    With ``width`` set (figures) a key is shown by its last part where that is unambiguous
    and the label is wrapped onto lines of ``width``."""
    def parts(row: JobRow) -> dict[str, str]:
        items = {}
        for override in row.override_list:
            key, _, value = override.partition("=")
            if not (drop_seed and key.lstrip("+~") == "seed"):
                items[key] = short_number(value)
        return items

    split = [parts(r) for r in rows]
    keys = list(dict.fromkeys(k for items in split for k in items))
    varying = [k for k in keys if len({items.get(k) for items in split}) > 1]
    tails = [k.rsplit(".", 1)[-1] for k in varying]
    names = {k: (t if width and tails.count(t) == 1 else k)
             for k, t in zip(varying, tails, strict=True)}
    labels = []
    for row, items in zip(rows, split, strict=True):
        text = " ".join(f"{names[k]}={items[k]}" for k in varying if k in items)
        if text and width:
            text = textwrap.fill(text, width, break_long_words=True)
        labels.append(text or f"job {row.job}")
    return labels


def group_labels(groups: list[SeedGroup], rows: list[JobRow],
                 width: int | None = 46) -> list[str]:
    """Per setting, the overrides that tell it from the others (seed left out)."""
    if len(groups) == 1:
        return ["all jobs"]
    return varying_labels([_group_row(g, rows) for g in groups], drop_seed=True, width=width)


def shared_overrides(rows: list[JobRow]) -> str:
    """The overrides every run of the sweep has in common (numbers shortened)."""
    if not rows:
        return ""
    common = [o for o in rows[0].override_list if not o.lstrip("+~").startswith("seed=")]
    return " ".join(short_override(o) for o in common
                    if all(o in r.override_list for r in rows[1:]))


def _group_row(group: SeedGroup, rows: list[JobRow]) -> JobRow:
    """A stand-in row holding a group's overrides (for :func:`varying_labels`)."""
    member = next(r for r in rows if group_key(r) == group.group)
    return JobRow(job=member.job, status="", override_list=list(member.override_list))


def shorten(text: str, width: int = 46) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"
