"""Every experiment bundle composes, validates and documents itself in its first lines."""

from __future__ import annotations

import pytest

from mlo_exp.config import config_dir, validate

CONF = config_dir()

OPTIONS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
EXPECTED = {  # bundle -> (shape, ring)
    "smoke": ([2, 2, 2], "Z"),
    "matmul_2x2x2": ([2, 2, 2], "Z"),
    "matmul_2x2x3": ([2, 2, 3], "Z"),
    "matmul_2x3x3": ([2, 3, 3], "Z"),
    "matmul_3x3x3": ([3, 3, 3], "Z"),
    "matmul_2x2x2_z2": ([2, 2, 2], "Z2"),
    "matmul_3x3x3_z2": ([3, 3, 3], "Z2"),
    "matmul_4x4x4_z2": ([4, 4, 4], "Z2"),
}


def test_the_common_studies_are_all_there() -> None:
    assert set(EXPECTED) <= set(OPTIONS)


@pytest.mark.parametrize("name", OPTIONS)
def test_bundle_composes_validates_and_is_documented(compose_config, name: str) -> None:
    lines = (CONF / "experiment" / f"{name}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_"
    assert lines[1].startswith("# ") and len(lines[1]) > 20  # the one-line description
    settings = validate(compose_config([f"experiment={name}"]))
    if name in EXPECTED:
        assert (list(settings.env.shape), settings.env.ring) == EXPECTED[name]
    if settings.env.ring == "Z2":
        assert set(settings.env.coefficients) <= {0, 1}


def test_command_line_overrides_win_over_the_bundle(compose_config) -> None:
    cfg = compose_config(["experiment=matmul_2x2x2", "seed=9", "tag=mine",
                          "trainer.episodes=3"])
    assert (cfg.seed, cfg.tag, cfg.trainer.episodes) == (9, "mine", 3)
    assert compose_config(["experiment=matmul_2x2x2"]).tag == "exp-2x2x2"
