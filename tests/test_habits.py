"""The habits that keep the layers readable (issue 12, Build 8), checked on every module of the project.

- every public function and class of the library packages and leaves has a `>>>` example in its docstring (the
  README's test command runs them as doctests: pyproject.toml's `testpaths` and `--doctest-modules`);
- tests mirror modules: every module has `tests/<package>/<subpackage>/test_<module>.py` (or, where basenames
  would collide across the tree, `test_<package>_<module>.py` in the same folder);
- (every test that loads real weights is marked `slow`: enforced while the tests run, in tests/conftest.py);
- no private (`_name`) import from another module;
- files stay under 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
LEAVES = ("poslabels", "basemodels", "problems", "formats", "argcheck", "grids")
LIBRARY = ("codi", "interp", "probes", "viz")
PACKAGES = (*LEAVES, *LIBRARY, "app")
MAX_LINES = 400


def _files(*roots: str) -> list[Path]:
    return sorted(f for r in roots for f in (ROOT / r).rglob("*.py"))


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _public_defs(tree: ast.Module) -> list[ast.FunctionDef | ast.ClassDef]:
    exported = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exported = set(ast.literal_eval(node.value))
    return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
            and (exported is None or n.name in exported)]


def test_every_public_function_and_class_has_an_example():
    missing = [f"{_module_name(f)}.{n.name}" for f in _files(*LEAVES, *LIBRARY)
               for n in _public_defs(ast.parse(f.read_text())) if ">>>" not in (ast.get_docstring(n) or "")]
    assert not missing, f"{len(missing)} public names without a `>>>` example:\n" + "\n".join(missing)


def test_the_readme_test_command_runs_the_doctests_of_every_library_package():
    opts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in opts["addopts"]
    assert set(opts["testpaths"]) >= {"tests", *LEAVES, *LIBRARY}


def _expected_tests(f: Path) -> list[Path]:
    rel = f.relative_to(ROOT)
    folder = ROOT / "tests" / rel.parent
    return [folder / f"test_{f.stem}.py", folder / f"test_{rel.parts[-2]}_{f.stem}.py"]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_tests_mirror_modules(pkg):
    modules = [f for f in _files(pkg) if f.stem not in ("__init__", "__main__")]
    missing = [str(f.relative_to(ROOT)) for f in modules if not any(t.exists() for t in _expected_tests(f))]
    assert not missing, "modules without tests/<package>/test_<module>.py:\n" + "\n".join(missing)


def test_test_file_basenames_are_unique():
    seen: dict[str, Path] = {}
    for f in _files("tests"):
        if f.name.startswith("test_"):
            assert f.name not in seen, f"{f} and {seen[f.name]} share a basename (pytest imports them by it)"
            seen[f.name] = f


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for f in _files(*PACKAGES):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                bad += [f"{f.relative_to(ROOT)}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_")]
    assert not bad, "\n".join(bad)


def test_files_stay_under_400_lines():
    long = [f"{f.relative_to(ROOT)} ({n} lines)" for f in _files(*PACKAGES, "tests", "benchmarks")
            if (n := len(f.read_text().splitlines())) >= MAX_LINES]
    assert not long, "\n".join(long)
