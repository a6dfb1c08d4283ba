"""Several logging backends at once (``logger=many``), each isolated from the others.

``conf/logger/many.yaml`` lists the backends under ``backends`` (by default W&B and
TensorBoard); each entry is an ordinary logger option, so ``logger.backends.wandb.mode=offline``
overrides it and ``~logger.backends.tensorboard`` removes one. A backend that cannot even be
built (bad settings, a missing package) is warned about and left out; the others, the console
and the run files carry on. :func:`mlo_exp.run.experiment.build_logger` merges the members into the
run's one :class:`~mlo_exp.loggers.base.LoggerGroup`, so every failure reaches the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate

from mlo_exp.loggers.base import Logger, LoggerGroup


class ManyLoggers(LoggerGroup):
    """A group built from ``backends`` (name -> logger config with ``_target_``)."""

    name = "many"

    def __init__(self, backends: Mapping[str, Any]) -> None:
        super().__init__([])
        for name, node in backends.items():
            if node is None:  # ``logger.backends.x=null`` switches one off
                continue
            try:
                self.loggers.append(build_backend(node))
            except Exception as error:
                self.record_failure(str(name), "setup", error)


def build_backend(node: Any) -> Logger:
    """Instantiate one backend's config; raises whatever its constructor raises."""
    backend = instantiate(node, _convert_="all")
    if not isinstance(backend, Logger):
        raise TypeError(f"{type(backend).__name__} is not a mlo_exp Logger")
    return backend


def backend_name(node: Any) -> str:
    """A backend's name from its ``_target_`` (``...WandbLogger`` -> ``wandb``), for
    messages about a backend that could not be built."""
    target = str(node.get("_target_") if hasattr(node, "get") else node)
    short = target.rsplit(".", 1)[-1].lower()
    return short.removesuffix("logger").removesuffix("loggers") or short
