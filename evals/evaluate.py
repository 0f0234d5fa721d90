"""One eval run end to end: suites → environment → subject → results → summary → reports.

    report = evaluate("all", provider="fake", agent="copilot", repeat=1, report_dir="var/evals/latest")

The SOP index is the shipped corpus embedded by the local model, built once per corpus version into
``<COPILOT_VAR_DIR>/evals/sop-index-<hash>`` (the hash covers the SOP files and the embedding
model, so an edited SOP gets a fresh index) and reused by later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.llm import FakeLLM, get_llm
from agent.policy import load_policy
from agent.settings import get_settings
from evals.baseline import BaselineSubject
from evals.metrics import summarize
from evals.report import build_report, provenance, write_reports
from evals.runner import CaseResult, RunEnv, new_workdir, run_cases, template_database
from evals.subjects import CopilotSubject, scripted_explainer
from evals.suite import load_cases
from knowledge.embeddings import MiniLMEmbeddingFunction
from knowledge.ingest import SOP_DIR, ingest
from knowledge.retrieve import applies_to_of, citation
from knowledge.store import make_client, open_collection
from tools.fixtures import SuiteError

__all__ = ["AGENTS", "PROVIDERS", "evaluate", "index_facts", "make_llm", "sop_index"]

PROVIDERS = ("fake", "llamacpp", "openai")
AGENTS = ("copilot", "baseline")


def _corpus_hash(embedding_name: str) -> str:
    h = hashlib.sha256(embedding_name.encode())
    for path in sorted(SOP_DIR.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(SOP_DIR).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def sop_index(var_dir: Path, embedding=None, *, echo: Callable[[str], None] = lambda _: None):
    """The shipped SOPs as a Chroma collection, cached by corpus hash under ``var_dir/evals``."""
    if embedding is None:
        embedding = MiniLMEmbeddingFunction()
    folder = Path(var_dir) / "evals" / f"sop-index-{_corpus_hash(embedding.name())}"
    done = folder / "complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        echo(f"indexing the shipped SOPs into {folder} (once per corpus version) ...")
        collection = open_collection(embedding, client=make_client(var_dir=folder))
        ingest(collection, None, echo=lambda _: None, progress=False)
        done.write_text("ok\n")
        return collection
    return open_collection(embedding, client=make_client(var_dir=folder))


def index_facts(collection) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The citations the index holds, and the exception types each SOP applies to."""
    citations, applies = set(), {}
    for meta in collection.get(include=["metadatas"])["metadatas"] or []:
        doc = str(meta["doc_id"])
        citations.add(citation(doc, str(meta.get("section") or "")))
        applies[doc] = frozenset(applies_to_of(meta))
    return frozenset(citations), applies


def make_llm(provider: str, settings=None):
    """The model for ``provider``: ``fake`` is the scripted explainer; the others come from the settings."""
    if provider == "fake":
        return FakeLLM(scripted_explainer, name="scripted-explainer")
    if settings is None:
        settings = get_settings()
    return get_llm(settings.model_copy(update={"llm_provider": provider}))


def make_subject(agent: str, policy, llm, tool_format: str = "compact"):
    if agent == "baseline":
        return BaselineSubject(policy, llm, tool_format)

    return CopilotSubject(policy, llm)


JOURNAL = "cases.jsonl"


def _identity(meta: dict[str, Any], cases) -> dict[str, Any]:
    """What a journal must match to be resumed: the same subject, model, policy, prompts, code and cases."""
    keys = (
        "agent",
        "baseline_tool_format",
        "provider",
        "model",
        "suite",
        "repeat",
        "policy_hash",
        "prompt_hashes",
        "commit",
        "dirty",
    )
    return {"journal": 1, **{k: meta.get(k) for k in keys}, "cases": [c.key for c in cases]}


def read_journal(path: Path, identity: dict[str, Any]) -> dict[tuple[int, str], Any]:
    """The results an interrupted run recorded in ``path``, by (repetition, case key).

    Raises SuiteError, naming what differs, when the journal was written by another agent, model,
    policy, prompt set, commit or case selection: its results would not belong to this run. A last
    line cut off by the interruption is ignored (that case runs again).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the journal to resume: {exc.strerror or exc}") from exc
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("journal") != 1:
        raise SuiteError(f"{path}: not an eval journal (its first line is not a journal header)")
    differ = [k for k in identity if header.get(k) != identity[k]]
    if differ:
        shown = ", ".join(
            k if k in ("cases", "prompt_hashes") else f"{k} {header.get(k)!r} != {identity[k]!r}"
            for k in differ
        )
        raise SuiteError(
            f"{path}: cannot resume, the journal belongs to another run ({shown}); "
            "start a fresh run without --resume or in another --report folder"
        )
    done: dict[tuple[int, str], Any] = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
            result = CaseResult.from_dict(row)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            if n == len(lines):
                break  # the line being written when the run stopped
            raise SuiteError(f"{path}:{n}: malformed journal line ({exc})") from exc
        done[(int(row["run"]), result.key)] = result
    return done


def evaluate(
    suite: str,
    *,
    provider: str = "fake",
    agent: str = "copilot",
    repeat: int = 1,
    report_dir: str | Path | None = None,
    progress: bool | None = None,
    policy=None,
    llm=None,
    collection=None,
    var_dir: str | Path | None = None,
    only: list[str] | None = None,
    resume: bool = False,
    tool_format: str = "compact",
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run ``suite`` (a name, file, folder or ``all``) and return the report (written when ``report_dir``).

    ``only``: case ids (or suite/id keys) to run; default every case. With ``report_dir`` every
    finished case is appended to ``report_dir/cases.jsonl`` at once, so an interrupted run loses at
    most the case it was in; ``resume`` reuses that journal's results (same agent, model, policy,
    prompts, commit and cases, else SuiteError) and runs only the cases it lacks. ``tool_format``:
    how the baseline gets its tools from a model called without them (evals.baseline.TOOL_FORMATS).
    """
    import datetime as dt

    started = dt.datetime.now(dt.UTC)
    settings = get_settings()
    cases = load_cases(suite)
    if only:
        wanted = set(only)
        unknown = sorted(wanted - {c.id for c in cases} - {c.key for c in cases})
        if unknown:
            raise SuiteError(f"no case {', '.join(unknown)} in suite {suite!r}")
        cases = [c for c in cases if c.id in wanted or c.key in wanted]
    policy = policy or load_policy(settings.policy_path)
    llm = llm if llm is not None else make_llm(provider, settings)
    if collection is None:
        collection = sop_index(Path(var_dir or settings.var_dir), echo=echo)
    citations, applies = index_facts(collection)
    model = f"{getattr(llm, 'provider', provider)}:{getattr(llm, 'name', '?')}"
    # the commit, prompts and policy are read now, before any case runs: what is loaded is what is
    # measured, even if the checkout moves on while a long run goes on
    meta = provenance(
        agent=agent,
        provider=provider,
        model=model,
        policy=policy,
        suite=suite,
        repeat=repeat,
        started_at=started,
    )
    if agent == "baseline":
        meta["baseline_tool_format"] = (
            tool_format if getattr(llm, "chat_model", None) is None else "model's own"
        )
    identity = _identity(meta, cases)
    journal = Path(report_dir) / JOURNAL if report_dir else None
    done: dict[tuple[int, str], Any] = {}
    if resume:
        if journal is None:
            raise SuiteError("--resume needs the --report folder of the interrupted run")
        if journal.exists():
            done = read_journal(journal, identity)
            echo(f"resuming: {len(done)} of {len(cases) * repeat} case runs already in {journal}")
    if journal is not None and not done:
        journal.parent.mkdir(parents=True, exist_ok=True)
        journal.write_text(json.dumps(identity, default=str) + "\n", encoding="utf-8")

    def record(rep: int, result) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{result.id} {result.status}"[:40])
        if journal is not None:
            with journal.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"run": rep, **result.as_dict()}, default=str) + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    subject = make_subject(agent, policy, llm, tool_format)
    workdir = new_workdir()
    try:
        env = RunEnv(
            workdir=workdir,
            template=template_database(workdir),
            policy=policy,
            collection=collection,
            valid_citations=citations,
            applies_to=applies,
        )
        show = sys.stderr.isatty() if progress is None else progress
        from tqdm import tqdm

        bar = tqdm(
            total=len(cases) * repeat,
            initial=len(done),
            desc=f"eval {agent}",
            unit="case",
            disable=not show,
            file=sys.stderr,
        )
        try:
            runs = run_cases(cases, subject, env, repeat=repeat, on_result=record, done=done)
        finally:
            bar.close()
            env.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if done:
        meta["resumed_cases"] = len(done)  # results taken from the interrupted run's journal
    report = build_report(meta, summarize(runs), runs)
    if report_dir:
        report["files"] = {k: str(v) for k, v in write_reports(report, report_dir).items()}
    return report
