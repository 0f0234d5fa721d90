"""The architecture rules that import-linter does not express: first-party imports sit at the top of
a module (only the command line imports inside functions, for start-up time), and every package
says what it holds."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "tools", "knowledge", "prompts", "ui", "evals")
# The CLI imports inside commands for start-up time (ui/cli/__init__.py); the llamacpp provider
# imports agent.llm.local_model where it is used, because `python -m agent.llm.local_model` (README)
# imports the agent.llm package first and runpy warns about a module already imported under its name.
LAZY_ALLOWED = ("ui/cli/", "agent/llm/llamacpp.py")


def _modules() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations/versions" not in p.as_posix()
    )


def _hidden_imports(path: Path) -> list[str]:
    """First-party imports inside a function body of ``path``, as ``line: module``."""
    found: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            if in_function and any(n.split(".")[0] in PACKAGES for n in names):
                found.append(f"{child.lineno}: {', '.join(names)}")
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_first_party_imports_sit_at_the_top_of_their_modules() -> None:
    hidden = {
        str(p.relative_to(ROOT)): lines
        for p in _modules()
        if not p.relative_to(ROOT).as_posix().startswith(LAZY_ALLOWED) and (lines := _hidden_imports(p))
    }
    assert not hidden, f"first-party imports inside functions (move them to the top): {hidden}"


@pytest.mark.parametrize(
    "package", sorted({p.parent for p in _modules()}), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_module_has_a_docstring(package: Path) -> None:
    missing = [
        p.name
        for p in package.glob("*.py")
        if p.name != "__init__.py" and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None
    ]
    assert not missing, f"modules without a docstring saying what and why: {missing}"


def test_the_hidden_import_check_finds_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Sample."""\n\ndef f():\n    from agent.settings import get_settings\n    return get_settings\n'
    )
    assert _hidden_imports(sample) == ["4: agent.settings"]


SUB_PACKAGES = [
    "agent.comms",
    "agent.copilot",
    "agent.flow",
    "agent.governance",
    "agent.llm",
    "agent.ops",
    "agent.triage",
]


@pytest.mark.parametrize("name", SUB_PACKAGES)
def test_every_sub_package_names_a_public_surface_that_resolves(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__doc__ and package.__all__, f"{name} has no docstring or no __all__"
    for public in package.__all__:
        value = getattr(package, public)
        assert getattr(value, "__module__", name).startswith(name), (name, public)
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_importing_one_module_of_governance_does_not_load_the_approval_graph() -> None:
    code = (
        "import sys; import agent.governance.origin; "
        "assert 'agent.governance.requests' not in sys.modules, 'eager'; "
        "assert 'langgraph' not in sys.modules, 'langgraph'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
