"""Read config YAML files safely, including upstream's one "unsafe" construct.

detectron2's model-zoo YAMLs are plain data except ``Base-RetinaNet.yaml``, which computes its
anchor sizes with ``!!python/object/apply:eval ["[[x, x * 2**(1.0/3), ...] for x in [32, ...]]"]``.
Upstream falls back to ``yaml.unsafe_load`` for it, which runs arbitrary Python. Here the tag is
accepted only for arithmetic on numbers, lists, tuples and list comprehensions, evaluated by
walking the expression's AST; anything else (names, calls, attributes, other Python tags) is a
:class:`ConfigError`.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Callable

import yaml

from ..errors import ConfigError

__all__ = ["load_yaml", "safe_eval_arithmetic"]

_EVAL_TAG = "tag:yaml.org,2002:python/object/apply:eval"
_MAX_EXPONENT = 64
_MAX_ITEMS = 100_000
"""Most list/tuple items one expression may build in all (Base-RetinaNet's anchors need 20)."""
_MAX_INT_BITS = 4096
"""Largest integer an expression may build; bounds ``**`` and ``*`` chains before they run."""

_BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def safe_eval_arithmetic(expression: str) -> Any:
    """Evaluate ``expression`` if it only uses numbers, + - * / // % **, lists/tuples and
    list comprehensions over them; raise ConfigError otherwise. Nothing is imported or called."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ConfigError(f"YAML eval tag: expression={expression!r}, expected a Python expression ({e.msg})") from e
    return _Evaluator(expression).visit(tree.body, {})


class _Evaluator:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._items_built = 0

    def _count_items(self, node: ast.AST, n: int) -> None:
        """Account for ``n`` more list/tuple items; refuse before the total passes _MAX_ITEMS."""
        self._items_built += n
        if self._items_built > _MAX_ITEMS:
            raise self._reject(node, f"lists of more than {_MAX_ITEMS} items in all")

    def _reject(self, node: ast.AST, why: str) -> ConfigError:
        return ConfigError(
            f"YAML eval tag: expression={self.expression!r} uses {why} ({type(node).__name__}), "
            "expected only numbers, arithmetic, lists, tuples and list comprehensions"
        )

    def visit(self, node: ast.AST, scope: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            self._count_items(node, len(node.elts))
            items = [self.visit(e, scope) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Name):
            if node.id not in scope:
                raise self._reject(node, f"the free name {node.id!r}")
            return scope[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](self.visit(node.operand, scope))
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            left, right = self.visit(node.left, scope), self.visit(node.right, scope)
            if isinstance(node.op, ast.Pow) and (not isinstance(right, (int, float)) or abs(right) > _MAX_EXPONENT):
                raise self._reject(node, f"an exponent outside [-{_MAX_EXPONENT}, {_MAX_EXPONENT}]")
            self._check_result_size(node, left, right)
            try:
                return _BIN_OPS[type(node.op)](left, right)
            except (TypeError, ArithmeticError) as e:
                raise self._reject(node, f"an invalid operation: {e}") from e
        if isinstance(node, ast.ListComp):
            return self._list_comprehension(node, scope)
        raise self._reject(node, "a construct outside arithmetic")

    def _check_result_size(self, node: ast.BinOp, left: Any, right: Any) -> None:
        """Refuse a ``*`` or ``**`` whose result would exceed the size bounds, before computing it."""
        if isinstance(node.op, ast.Mult):
            seq, count = (left, right) if isinstance(left, (list, tuple)) else (right, left)
            if isinstance(seq, (list, tuple)) and isinstance(count, int):
                self._count_items(node, len(seq) * max(count, 0))
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise self._reject(node, f"a product of more than {_MAX_INT_BITS} bits")
        elif isinstance(node.op, ast.Pow) and isinstance(left, int) and isinstance(right, int) and right > 0:
            if left.bit_length() * right > _MAX_INT_BITS:
                raise self._reject(node, f"a power of more than {_MAX_INT_BITS} bits")

    def _list_comprehension(self, node: ast.ListComp, scope: dict[str, Any]) -> list[Any]:
        if len(node.generators) != 1:
            raise self._reject(node, "nested comprehension loops")
        gen = node.generators[0]
        if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
            raise self._reject(node, "a comprehension with conditions or unpacking")
        items = self.visit(gen.iter, scope)
        if not isinstance(items, (list, tuple)):
            raise self._reject(gen.iter, "iteration over a non-list")
        self._count_items(node, len(items))
        return [self.visit(node.elt, {**scope, gen.target.id: item}) for item in items]


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader plus the arithmetic-only eval tag."""


def _construct_eval(loader: _ConfigLoader, node: yaml.Node) -> Any:
    args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else None
    if not args or len(args) != 1 or not isinstance(args[0], str):
        raise ConfigError(f"YAML eval tag at {node.start_mark}: args={args!r}, expected one expression string")
    return safe_eval_arithmetic(args[0])


_ConfigLoader.add_constructor(_EVAL_TAG, _construct_eval)


def load_yaml(text: str, filename: str) -> dict[str, Any]:
    """Parse a config file's text into a dict ({} for an empty file); errors name ``filename``."""
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as e:
        raise ConfigError(f"{filename}: {e}") from e
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(
            f"{filename}: {e.problem} {e.problem_mark}; only plain YAML (and !!python/object/apply:eval "
            "of arithmetic) is accepted, Python objects are never constructed"
        ) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{filename}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: top level={type(data).__name__}, expected a mapping of config keys")
    return data
