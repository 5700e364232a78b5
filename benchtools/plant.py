"""The planted slowdowns of the self-tests: ``breaker.py`` rewritten with its AST.

Standard library only, with no import of this package: the compare self-test's probe
runs in asv's environment and loads this file by its path (the clone it measures may
hold another version of this package, or none).

* :func:`plant`: a busy loop in ``CircuitBreaker.call``'s success path (compare);
* :func:`plant_at_start`: a busy loop at the start of any method (instruction counts);
* :func:`plant_reset`: ``CircuitBreaker.reset()`` doing its work twice (history).
"""

from __future__ import annotations

import ast


class SelftestError(Exception):
    """The self-test could not run."""


def find_method(source: str, cls_name: str, name: str) -> ast.FunctionDef | None:
    """The definition of ``cls_name.name`` at the top level of ``source``, if any."""
    cls = next(
        (n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls_name),
        None,
    )
    if cls is None:
        return None
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def plant(source: str, iterations: int) -> str:
    """``breaker.py`` with a busy loop in ``CircuitBreaker.call``'s success path.

    The loop goes right after the ``try`` statement that runs the guarded function, so
    it runs only when that function returned normally (not on rejection or failure).
    """
    call = find_method(source, "CircuitBreaker", "call")
    try_node = call and next((n for n in call.body if isinstance(n, ast.Try)), None)
    if try_node is None or try_node.end_lineno is None:
        raise SelftestError("CircuitBreaker.call has no try statement to plant a slowdown after")
    pad = " " * try_node.col_offset
    loop = [
        f"{pad}_planted = {iterations}  # asv selftest: planted slowdown (a busy loop)\n",
        f"{pad}while _planted:\n",
        f"{pad}    _planted -= 1\n",
    ]
    lines = source.splitlines(keepends=True)
    lines[try_node.end_lineno : try_node.end_lineno] = loop
    return "".join(lines)


def plant_at_start(source: str, cls_name: str, method: str, iterations: int) -> str:
    """``source`` with a busy loop as the first statement of ``cls_name.method``.

    The loop goes after the docstring, so it runs on every call of the method and adds
    a fixed number of interpreter instructions per iteration.
    """
    fn = find_method(source, cls_name, method)
    if fn is None:
        raise SelftestError(f"no method {cls_name}.{method} to plant a change in")
    body = fn.body
    has_doc = (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    if has_doc and len(body) == 1:
        raise SelftestError(f"{cls_name}.{method} has nothing but a docstring")
    first = body[1] if has_doc else body[0]
    pad = " " * first.col_offset
    loop = [
        f"{pad}_planted = {iterations}  # asv selftest: planted instructions (a busy loop)\n",
        f"{pad}while _planted:\n",
        f"{pad}    _planted -= 1\n",
    ]
    lines = source.splitlines(keepends=True)
    lines[first.lineno - 1 : first.lineno - 1] = loop
    return "".join(lines)


def plant_reset(source: str) -> str:
    """``breaker.py`` with ``CircuitBreaker.reset``'s body (docstring aside) run twice."""
    reset = find_method(source, "CircuitBreaker", "reset")
    if not reset:
        raise SelftestError("CircuitBreaker has no reset() to plant a slowdown in")
    body = reset.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body or body[-1].end_lineno is None:
        raise SelftestError("CircuitBreaker.reset() has no statement to repeat")
    lines = source.splitlines(keepends=True)
    work = lines[body[0].lineno - 1 : body[-1].end_lineno]
    pad = " " * body[0].col_offset
    mark = f"{pad}# history selftest: planted slowdown, reset() does its work twice\n"
    lines[body[-1].end_lineno : body[-1].end_lineno] = [mark, *work]
    return "".join(lines)
