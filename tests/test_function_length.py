"""No function body in the package grows past about 80 lines (issue 27):
long functions are split into small ones per step. One that cannot be split
yet is listed in KNOWN with the reason (none at present)."""
import ast
from pathlib import Path

import torch_geometric_remul

MAX_LINES = 80
PACKAGE = Path(torch_geometric_remul.__file__).parent

# 'module path:function' -> why it is still longer
KNOWN: dict = {}


def body_lines(node) -> int:
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], 'value', None), ast.Constant):
        body = body[1:]  # the docstring does not count
    return 0 if not body else body[-1].end_lineno - body[0].lineno + 1


def long_functions():
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = body_lines(node)
                if n > MAX_LINES:
                    where = path.relative_to(PACKAGE).as_posix()
                    yield f'{where}:{node.name}', n


def test_no_function_longer_than_80_lines():
    found = dict(long_functions())
    new = {k: n for k, n in found.items() if k not in KNOWN}
    assert not new, (f'functions longer than {MAX_LINES} lines (split them '
                     f'into small steps): {new}')
