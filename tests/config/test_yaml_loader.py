"""The YAML loader: plain YAML plus arithmetic-only `!!python/object/apply:eval`."""

import math

import pytest

from detectron2_export.config.yaml_loader import load_yaml, safe_eval_arithmetic
from detectron2_export.errors import ConfigError

RETINANET_SIZES = "[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] for x in [32, 64, 128, 256, 512 ]]"


def test_upstream_retinanet_anchor_expression():
    sizes = safe_eval_arithmetic(RETINANET_SIZES)
    expected = [[x * 2 ** (k / 3) for k in range(3)] for x in (32, 64, 128, 256, 512)]
    assert len(sizes) == 5
    for got, want in zip(sizes, expected):
        assert got == pytest.approx(want, rel=1e-12)
    assert sizes[0][1] == pytest.approx(40.31747359663594, rel=1e-12)  # 32 * cbrt(2)


@pytest.mark.parametrize("expression,value", [
    ("1 + 2 * 3", 7), ("-2 ** 2", -4), ("(1, 2.5)", (1, 2.5)), ("7 // 2 + 7 % 2", 4),
    ("[x / 2 for x in [1, 3]]", [0.5, 1.5]),
])
def test_arithmetic(expression, value):
    assert safe_eval_arithmetic(expression) == value


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')",
    "open('x')",
    "(1).__class__",
    "x",
    "[y for y in range(3)]",
    "10 ** 10 ** 10",
    "lambda: 1",
    "'a' * 3",
    "[x for x in [1] if x]",
    "1 +",
])
def test_rejects_everything_else(expression):
    with pytest.raises(ConfigError, match="YAML eval tag"):
        safe_eval_arithmetic(expression)


def test_load_yaml_eval_tag_and_empty_file():
    data = load_yaml(f'A: !!python/object/apply:eval ["{RETINANET_SIZES}"]\n', "f.yaml")
    assert math.isclose(data["A"][4][2], 512 * 2 ** (2 / 3))
    assert load_yaml("", "empty.yaml") == {}


def test_load_yaml_top_level_must_be_mapping():
    with pytest.raises(ConfigError, match=r"list\.yaml: top level=list, expected a mapping"):
        load_yaml("- 1\n- 2\n", "list.yaml")


@pytest.mark.parametrize("expression,why", [
    ("[0] * 10 ** 9", "more than 100000 items"),  # issue 15: an 8 GB list before any check
    ("10 ** 9 * [0]", "more than 100000 items"),
    ("[[0] * 50000 for x in [0] * 50000]", "more than 100000 items"),  # each list small, 2.5e9 in all
    ("((2 ** 64) ** 64) ** 64", "more than 4096 bits"),  # exponents within bounds, 262144-bit result
    ("(2 ** 64) ** 64 * (2 ** 64) ** 64", "more than 4096 bits"),
])
def test_rejects_unbounded_results_before_building_them(expression, why):
    with pytest.raises(ConfigError, match=why):
        safe_eval_arithmetic(expression)


def test_size_bounds_are_inclusive():
    assert len(safe_eval_arithmetic("[0] * 99999")) == 99999  # plus the literal's one item: 100000 in all
    assert safe_eval_arithmetic("2 ** 64 * 2 ** 64") == 2 ** 128


def test_load_yaml_names_file_for_oversized_eval():
    with pytest.raises(ConfigError, match=r"big\.yaml: .*more than 100000 items"):
        load_yaml("A: !!python/object/apply:eval ['[0] * 10 ** 9']\n", "big.yaml")
