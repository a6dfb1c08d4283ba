"""What ``mlo-train`` says about its command line: the config groups in ``--help`` and the
keys a refused override could have meant. Both read Hydra's own config (``conf/``), so a new
option or key shows up without editing code."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

from mlo_exp.config import EnvConfig, ObjectiveConfig, RunConfig, TrainerConfig, config_dir

HELP_FILE = Path("hydra") / "help" / "mlo_train.yaml"


def register_help_resolver(conf: Path) -> None:
    """``${mlo_help_groups:}`` (used by ``conf/hydra/help/mlo_train.yaml``): the selectable
    groups of ``conf/`` and their options, the default (from ``config.yaml``'s defaults list)
    first, each with its line from the help file's ``groups`` (Hydra's own groups and the
    schemas left out)."""
    from omegaconf import OmegaConf

    def groups() -> str:
        described = dict(OmegaConf.load(conf / HELP_FILE).groups)
        defaults = {}
        for entry in OmegaConf.load(conf / "config.yaml").defaults:
            if OmegaConf.is_dict(entry):
                defaults.update({str(k): str(v) for k, v in entry.items()})
        names = [g for g in described if (conf / g).is_dir()]
        names += sorted(d.name for d in conf.iterdir()
                        if d.is_dir() and d.name not in described and d.name != "hydra")
        lines = []
        for name in names:
            options = sorted(p.stem for p in (conf / name).glob("*.yaml"))
            default = defaults.get(name)
            if default in options:
                options.remove(default)
                options.insert(0, f"{default} (default)")
            lines.append(textwrap.fill(f"{name}: {', '.join(options)}", 92,
                                       initial_indent="  ", subsequent_indent="      "))
            if name in described:
                lines.append(f"      {described[name]}")
        return "\n".join(lines)

    OmegaConf.register_new_resolver("mlo_help_groups", groups, replace=True)


def hint_unknown_keys(arguments: list[str]) -> None:
    """After Hydra refused an override such as ``trainer.bogus=1`` (it names the key but not
    the valid ones, and suggests ``+``, which the schema refuses too): one line per unknown
    key with the keys its node has. Plain ``key=value`` and ``group.key=value`` only."""
    try:
        for override in arguments:
            key, equals, _ = override.partition("=")
            if not equals or key.startswith(("+", "~", "hydra", "-")) or "/" in key:
                continue
            parts = key.split(".")
            if len(parts) > 2:
                continue
            known = schema_keys(parts[0] if len(parts) == 2 else None, arguments)
            if known is not None and parts[-1] not in known:
                where = f"{parts[0]} has" if len(parts) == 2 else "the config has"
                print(f"mlo-train: {where} no key {parts[-1]!r}; its keys are "
                      f"{', '.join(sorted(known))}", file=sys.stderr)
    except Exception:  # a hint only: never in the way of Hydra's own message
        return


def schema_keys(group: str | None, arguments: list[str]) -> set[str] | None:
    """The keys of a config node as its schema defines them: the run's (``group`` None), a
    fixed node's (``env``, ``trainer``, ``objective``), or the chosen option's of a group."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    if group is None:
        return set(fields)
    if group not in fields:
        return None
    kind = fields[group].type
    fixed = {"env": EnvConfig, "trainer": TrainerConfig, "objective": ObjectiveConfig}
    if group in fixed:
        return {f.name for f in dataclasses.fields(fixed[group]) if not f.name.startswith("_")}
    if "Any" not in str(kind):
        return None
    chosen = next((a.partition("=")[2] for a in arguments if a.startswith(f"{group}=")), None)
    if chosen is None:
        defaults = OmegaConf.load(config_dir() / "config.yaml").defaults
        chosen = next((str(d[group]) for d in defaults if OmegaConf.is_dict(d) and group in d),
                      None)
    option = config_dir() / group / f"{chosen}.yaml"
    if chosen is None or not option.is_file():
        return None
    node = ConfigStore.instance().load(f"schema/{group}/{chosen}.yaml").node
    keys = {k for k in node if not str(k).startswith("_")}
    keys |= {k for k in OmegaConf.load(option) if not str(k).startswith("_")
             and k != "defaults"}
    return keys
