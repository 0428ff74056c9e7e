"""The package promises Python >= 3.9 (pyproject's requires-python) while CI runs a newer python: every module
must parse as 3.9 grammar, postpone its annotations (``from __future__ import annotations``, so ``X | Y`` and
``list[int]`` in annotations never run), and use no 3.10+ call forms at run time. Where a python3.9
interpreter is on this machine, every module is also byte-compiled by it."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tensorcast"
MODULES = sorted(PACKAGE.rglob("*.py"))
NEWER_KEYWORDS = {("zip", "strict"), ("dataclass", "slots"), ("dataclass", "kw_only")}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_python39(path: Path):
    source = path.read_text("utf-8")
    tree = ast.parse(source, str(path), feature_version=(3, 9))
    annotated = any(
        isinstance(n, ast.AnnAssign)
        or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and (n.returns is not None or any(a.annotation for a in n.args.args)))
        for n in ast.walk(tree)
    )
    if annotated:
        futures = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
        assert any(a.name == "annotations" for f in futures for a in f.names), f"{path}: add `from __future__ import annotations`"
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match), f"{path}:{node.lineno}: match needs 3.10"
        if isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
            for kw in node.keywords:
                assert (fn, kw.arg) not in NEWER_KEYWORDS, f"{path}:{node.lineno}: {fn}({kw.arg}=) needs 3.10"
            if fn == "isinstance" and len(node.args) == 2:
                assert not isinstance(node.args[1], ast.BinOp), f"{path}:{node.lineno}: isinstance(x, A | B) needs 3.10"


def _python39():
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = sorted(pyenv.glob("3.9*/bin/python3.9")) if pyenv.exists() else []
    found = shutil.which("python3.9")
    for candidate in [*map(str, candidates), *([found] if found else [])]:
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_python39_compiles_every_module(tmp_path):
    py39 = _python39()
    if py39 is None:
        pytest.skip("no python3.9 interpreter here: the grammar check above stands in for it")
    r = subprocess.run([py39, "-m", "compileall", "-q", "-d", "tensorcast", str(PACKAGE)], capture_output=True, text=True,
                       env={"PYTHONPYCACHEPREFIX": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
