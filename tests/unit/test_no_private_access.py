"""Nothing calls another module's private names: the engine's internals included (issue 12).

Scans every tracked Python file of the project's packages and benchmarks: an attribute whose
name starts with one underscore may only be read on ``self``, ``cls`` or ``super()``, and no
module imports another's ``_private`` name. A benchmark that monkeypatches ``engine._msearch``
or a route that calls ``engine._search`` fails here.
"""

from __future__ import annotations

import ast
import subprocess

from mmsearch.config import PROJECT_ROOT

PACKAGES = ("indexer", "mmsearch", "query_service", "onnx_models", "mappings", "benchmarks")


def _project_files() -> list[str]:
    listed = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "*.py"], capture_output=True, text=True,
                            check=True).stdout.split()
    return [path for path in listed if path.split("/")[0] in PACKAGES]


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, expression) of every private name used from outside its owner."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, f"from {node.module} import {alias.name}") for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return sorted(found)


def test_the_scan_catches_what_it_is_for() -> None:
    source = "engine._msearch = spy\nresult = app.engine._search('i', {})\nfrom indexer.lifecycle import _api\n" \
             "class A:\n    def f(self):\n        return self._own, super()._base, type(self).__name__\n"
    assert [expr for _, expr in private_uses(source)] == ["engine._msearch", "app.engine._search",
                                                          "from indexer.lifecycle import _api"]


def test_no_module_uses_another_modules_private_names() -> None:
    files = _project_files()
    assert any(path == "query_service/routes/proxy.py" for path in files)  # the scan sees the HTTP layer
    violations = [f"{path}:{line}: {expr}" for path in files
                  for line, expr in private_uses((PROJECT_ROOT / path).read_text())]
    assert violations == []
