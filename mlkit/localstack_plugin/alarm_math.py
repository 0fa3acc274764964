"""Statistics and CloudWatch metric-math for alarm evaluation (no LocalStack imports).

Covers what the kit's alarms use: the statistics ``Sum``, ``Average``, ``Minimum``, ``Maximum``,
``SampleCount`` and percentiles ``pNN``; expressions with numbers, metric ids, ``+ - * /``, comparisons,
``AND``/``OR``/``NOT``, ``IF(condition, a, b)``, ``FILL(x, value)`` and ``ABS(x)``. A missing datapoint
is ``None`` and makes arithmetic on it ``None``, as CloudWatch drops such datapoints; ``FILL`` replaces it.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence

Value = float | None

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARISONS: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ExpressionError(ValueError):
    """The expression uses something this evaluator does not support."""


_BASIC: dict[str, Callable[[Sequence[float]], float]] = {
    "Sum": lambda v: float(sum(v)),
    "Average": lambda v: float(sum(v) / len(v)),
    "Minimum": lambda v: float(min(v)),
    "Maximum": lambda v: float(max(v)),
    "SampleCount": lambda v: float(len(v)),
}


def statistic(values: Sequence[float], stat: str) -> Value:
    """Return one statistic of the raw values of a period (``None`` when there are none).

    Percentiles (``p99``, ``p99.9``) use the nearest-rank method.
    """
    if not values:
        return None
    if stat in _BASIC:
        return _BASIC[stat](values)
    match = re.fullmatch(r"[pP](\d+(?:\.\d+)?)", stat)
    if match is None:
        raise ExpressionError(f"unsupported statistic {stat!r}")
    rank = max(1, math.ceil(float(match.group(1)) / 100.0 * len(values)))
    return float(sorted(values)[rank - 1])


def evaluate(expression: str, variables: Mapping[str, Value]) -> Value:
    """Evaluate a metric-math expression for one period.

    Args:
        expression: E.g. ``IF(invocations > 0, 100 * errors / invocations, 0)``.
        variables: The period's value of each metric id (``None`` when it has no datapoint).

    Raises:
        ExpressionError: For syntax or functions outside the supported subset.
    """
    python = re.sub(r"\bAND\b", " and ", expression)
    python = re.sub(r"\bOR\b", " or ", python)
    python = re.sub(r"\bNOT\b", " not ", python)
    try:
        tree = ast.parse(python, mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"cannot parse {expression!r}: {error}") from None
    return _eval(tree.body, variables)


def _eval(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    handler = _HANDLERS.get(type(node))
    if handler is None:
        raise ExpressionError(f"unsupported expression element {ast.dump(node)[:80]}")
    return handler(node, variables)


def _constant(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.Constant)
    if not isinstance(node.value, int | float) or isinstance(node.value, bool):
        raise ExpressionError(f"unsupported constant {node.value!r}")
    return float(node.value)


def _name(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.Name)
    if node.id not in variables:
        raise ExpressionError(f"unknown metric id {node.id!r}")
    return variables[node.id]


def _unary(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.UnaryOp)
    operand = _eval(node.operand, variables)
    if operand is None:
        return None
    if isinstance(node.op, ast.USub):
        return -operand
    if isinstance(node.op, ast.Not):
        return 0.0 if operand else 1.0
    return operand


def _binary(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.BinOp)
    if type(node.op) not in _ARITHMETIC:
        raise ExpressionError(f"unsupported operator {type(node.op).__name__}")
    left, right = _eval(node.left, variables), _eval(node.right, variables)
    if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
        return None
    return _ARITHMETIC[type(node.op)](left, right)


def _compare(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.Compare)
    if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARISONS:
        raise ExpressionError("only single comparisons are supported")
    left, right = _eval(node.left, variables), _eval(node.comparators[0], variables)
    if left is None or right is None:
        return None
    return 1.0 if _COMPARISONS[type(node.ops[0])](left, right) else 0.0


def _boolean(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.BoolOp)
    values = [_eval(v, variables) for v in node.values]
    if any(v is None for v in values):
        return None
    truth = all(values) if isinstance(node.op, ast.And) else any(values)
    return 1.0 if truth else 0.0


def _function(node: ast.AST, variables: Mapping[str, Value]) -> Value:
    assert isinstance(node, ast.Call)
    if not isinstance(node.func, ast.Name):
        raise ExpressionError("unsupported call")
    return _call(node.func.id.upper(), node.args, variables)


_HANDLERS: dict[type[ast.AST], Callable[[ast.AST, Mapping[str, Value]], Value]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.UnaryOp: _unary,
    ast.BinOp: _binary,
    ast.Compare: _compare,
    ast.BoolOp: _boolean,
    ast.Call: _function,
}


def _call(name: str, args: list[ast.expr], variables: Mapping[str, Value]) -> Value:
    if name == "IF" and len(args) == 3:
        condition = _eval(args[0], variables)
        if condition is None:
            return None
        return _eval(args[1] if condition else args[2], variables)
    if name == "FILL" and len(args) == 2:
        value = _eval(args[0], variables)
        return value if value is not None else _eval(args[1], variables)
    if name == "ABS" and len(args) == 1:
        value = _eval(args[0], variables)
        return None if value is None else abs(value)
    raise ExpressionError(f"unsupported function {name}() with {len(args)} arguments")
