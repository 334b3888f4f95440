"""The compiled modules keep the rules mypyc's code needs to behave as Python does.

mypyc re-raises a caught exception from the thread's "exception being handled", not
from the frame: when a compiled coroutine awaits inside a `finally` (with an exception
pending) or inside an `except` block that ends in a bare `raise`, and the await
suspends, other tasks run and change that state, and the exception is lost: the
coroutine returns as if nothing had been raised. The request handler returned None
to aiohttp for every cancelled request that waited for the spend ledger that way.
So, in the modules of setup.py's COMPILED list: no await in a `finally`, and an
`except` block that awaits re-raises its exception by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

from setup import COMPILED

ROOT = Path(__file__).resolve().parent.parent
AWAITS = (ast.Await, ast.AsyncFor, ast.AsyncWith)


def _awaits(body: list[ast.stmt]) -> bool:
    return any(isinstance(node, AWAITS) for stmt in body for node in ast.walk(stmt))


def _bare_raise(body: list[ast.stmt]) -> bool:
    return any(isinstance(node, ast.Raise) and node.exc is None
               for stmt in body for node in ast.walk(stmt))


def offences(source: str) -> list[str]:
    """Where `source` awaits in a `finally`, or re-raises bare after an await in `except`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Try | ast.TryStar):
            continue
        if node.finalbody and _awaits(node.finalbody):
            found.append(f"line {node.finalbody[0].lineno}: await in a finally")
        for handler in node.handlers:
            if _awaits(handler.body) and _bare_raise(handler.body):
                found.append(f"line {handler.lineno}: bare raise in an except that awaits")
    return found


def test_no_compiled_module_can_lose_an_exception_across_an_await() -> None:
    """No compiled module awaits in a finally or re-raises bare after awaiting in an except."""
    found = {path: offences((ROOT / path).read_text()) for path in COMPILED}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_check_sees_both_shapes() -> None:
    """The check finds an await in a finally and a bare raise after an await, and lets a
    raise by name, an await before the try and a finally without an await pass."""
    bad = '''
async def f(x):
    try:
        return await x()
    finally:
        await x()

async def g(x):
    try:
        await x()
    except BaseException:
        await x()
        raise
'''
    good = '''
async def f(x):
    await x()
    try:
        return await x()
    except BaseException as exc:
        await x()
        raise exc
    finally:
        x.done = True

async def g(x):
    try:
        await x()
    except ValueError:
        raise
'''
    assert [line.split(": ")[1] for line in offences(bad)] == [
        "await in a finally", "bare raise in an except that awaits"]
    assert offences(good) == []
