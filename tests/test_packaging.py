"""The distribution: our generic top-level names are ours alone, and configuration is documented."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distributions
from pathlib import Path

from agent.settings import OFFLINE_ENV, Settings

ROOT = Path(__file__).resolve().parents[1]
OURS = {"agent", "tools", "knowledge", "prompts", "ui", "evals", "tests"}
DIST = "fulfillment-copilot"


def _top_level_names(dist) -> set[str]:
    names = set()
    for f in dist.files or []:
        parts = f.parts
        if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".data", ".egg-info")):
            continue
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0].endswith(".py"):
            names.add(parts[0][:-3])
    return names


def test_no_other_installed_distribution_ships_our_top_level_names():
    clashes = {
        f"{d.metadata['Name']}: {sorted(_top_level_names(d) & OURS)}"
        for d in distributions()
        if d.metadata["Name"] != DIST and _top_level_names(d) & OURS
    }
    assert not clashes, f"installed distributions shadow our packages: {clashes}"


def test_every_customer_package_is_listed_explicitly_and_exists():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert listed == OURS - {"tests"}
    for name in OURS:
        assert (ROOT / name / "__init__.py").is_file(), name


def test_customer_stack_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {re.split(r"[\[=]", d)[0].lower(): d for d in deps}
    for name in (
        "langgraph",
        "langchain-openai",
        "llama-cpp-python",
        "chromadb",
        "fastapi",
        "sqlalchemy",
        "guardrails-ai",
        "gradio",
    ):
        assert name in pinned and "==" in pinned[name], name
    assert all("==" in d for d in deps), "every direct dependency is pinned"
    constraints = (ROOT / "constraints.txt").read_text()
    assert "llama_cpp_python==0.3.36" in constraints or "llama-cpp-python==0.3.36" in constraints


def test_env_example_lists_every_setting_and_offline_switch():
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    names = {f.validation_alias for f in Settings.model_fields.values()}
    assert names <= documented, f"missing in .env.example: {names - documented}"
    assert set(OFFLINE_ENV) <= documented
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{n}`" in readme for n in names), "the README explains every variable"
