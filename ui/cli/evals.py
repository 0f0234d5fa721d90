"""`copilot eval ...`: scenario suites, reports and the baseline agent.

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ui.cli.common import CliError

EXIT_FAILED = 1

eval_app = typer.Typer(
    help="Run eval suites (domain.md §5) against the copilot or the baseline agent; compare runs.",
    invoke_without_command=True,
)


def _headline(s: dict) -> str:
    def f(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    line = (
        f"{s['passed']}/{s['cases']} passed (pass rate {f(s['pass_rate'])}"
        + (f", pass^{s['repeat']} {f(s['pass_hat_k'])}" if s["repeat"] > 1 else "")
        + ")"
        f", {len(s['failed'])} failed, {len(s['incomplete'])} incomplete, {s['violations']} invariant violations; "
        f"action accuracy {f(s['action_accuracy'])}, approver accuracy {f(s['approver_role_accuracy'])}, "
        f"citation validity {f(s['citation_validity'])}, LLM fallbacks {s['llm_fallbacks']}, "
        f"grounding failures {s['grounding_failures']}, latency p50 {f(s['latency_p50_s'])} s / "
        f"p95 {f(s['latency_p95_s'])} s, {f(s['llm_calls_per_case'])} LLM calls per case"
    )
    return line


@eval_app.callback()
def eval_run(
    ctx: typer.Context,
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite",
            help="A suite name (e.g. credit), 'all', a YAML file or a folder of them; "
            "'conversation': the multi-turn chat threads of evals/conversations, scored per turn.",
            show_default=False,
        ),
    ] = None,
    provider: Annotated[
        str, typer.Option(help="Language model: fake (scripted), llamacpp (local) or openai.")
    ] = "fake",
    agent: Annotated[
        str, typer.Option(help="copilot (ours) or baseline (LangGraph's prebuilt ReAct agent).")
    ] = "copilot",
    baseline_tools: Annotated[
        str,
        typer.Option(
            "--baseline-tools",
            help="How the baseline gets tools from a local "
            "model: compact (one line per tool, JSON answers under a grammar) or "
            "native (the model's own <tool_call> format).",
        ),
    ] = "compact",
    repeat: Annotated[
        int, typer.Option("--repeat", min=1, max=20, help="Run every case K times: pass^k.")
    ] = 1,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Write report.json, report.md and report.html here.", show_default=False
        ),
    ] = None,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="Only this case id (repeatable).", show_default=False)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON; the last line is the summary.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the interrupted run whose --report folder this is: "
            "cases in its cases.jsonl are not run again.",
        ),
    ] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Run a suite: every case in a fresh database, scored on detection, recommendation, approval
    routing, explanation citations, the records after the approved action, and the invariants.

    Exit code 1 when a case fails or an invariant breaks; 2 for bad input.
    """
    if ctx.invoked_subcommand is not None:
        return
    if suite is None:
        raise CliError("name a suite: --suite NAME|all|FILE|FOLDER (see `copilot eval --help`)")
    if suite == "conversation":
        _conversation_run(provider, agent, report, case, as_json)
        return
    from evals.evaluate import AGENTS, PROVIDERS, evaluate

    if provider not in PROVIDERS:
        raise CliError(f"--provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    if agent not in AGENTS:
        raise CliError(f"--agent must be one of {', '.join(AGENTS)}, not {agent!r}")
    from evals.baseline import TOOL_FORMATS

    if baseline_tools not in TOOL_FORMATS:
        raise CliError(f"--baseline-tools must be one of {', '.join(TOOL_FORMATS)}, not {baseline_tools!r}")
    if agent == "baseline" and provider == "fake":
        raise CliError(
            "the baseline agent needs a model that chooses its tools: use --provider llamacpp or openai "
            "(the fake provider only scripts explanations)"
        )
    from agent.llm import LLMError

    try:
        result = evaluate(
            suite,
            provider=provider,
            agent=agent,
            repeat=repeat,
            report_dir=report,
            progress=progress,
            only=case,
            resume=resume,
            tool_format=baseline_tools,
            echo=lambda m: typer.echo(m, err=True),
        )
    except LLMError as exc:
        raise CliError(str(exc)) from exc
    summary = result["summary"]
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "summary"}, default=str))
        typer.echo(
            json.dumps(
                {
                    k: summary[k]
                    for k in (
                        "cases",
                        "passed",
                        "failed",
                        "incomplete",
                        "violations",
                        "pass_rate",
                        "pass_hat_k",
                        "action_accuracy",
                        "approver_role_accuracy",
                        "citation_validity",
                        "llm_fallbacks",
                        "grounding_failures",
                        "latency_p50_s",
                        "latency_p95_s",
                        "llm_calls_per_case",
                        "tokens_per_case",
                    )
                }
                | {"agent": agent, "provider": provider, "model": result["meta"]["model"]},
                default=str,
            )
        )
    else:
        meta = result["meta"]
        typer.echo(
            f"suite {meta['suite']} · agent {agent} · model {meta['model']} · commit "
            f"{(meta.get('commit') or '?')[:12]}"
        )
        typer.echo(_headline(summary))
        by_key = {r["key"]: r for r in result["runs"][0]}
        for key in summary["failed"]:
            r = by_key.get(key, {})
            bad = [f"{c['name']}: {c['detail']}" for c in r.get("checks", []) if c["status"] == "fail"]
            typer.echo(f"  FAIL {key}: " + "; ".join(bad + r.get("violations", [])))
        for name, info in summary["not_run"].items():
            typer.echo(f"  not run: {name} ({info['checks']}×): {'; '.join(info['reasons'])}")
        if report:
            typer.echo(f"reports: {', '.join(result['files'].values())}")
    if summary["failed"] or summary["violations"]:
        raise typer.Exit(EXIT_FAILED)


def _conversation_run(
    provider: str, agent: str, report: Path | None, only: list[str] | None, as_json: bool
) -> None:
    """`copilot eval --suite conversation`: the chat threads of evals/conversations, scored per turn."""
    from evals.evaluate import PROVIDERS

    if provider not in PROVIDERS:
        raise CliError(f"--provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    if agent != "copilot":
        raise CliError("the conversation suite runs the copilot's chat only (--agent copilot)")
    from agent.llm import LLMError
    from agent.settings import get_settings
    from evals.conversation import run_conversations, scripted_model
    from evals.evaluate import make_llm, sop_index
    from tools.fixtures import SuiteError

    try:
        llm = scripted_model() if provider == "fake" else make_llm(provider)
        collection = sop_index(get_settings().var_dir, echo=lambda m: typer.echo(m, err=True))
        result = run_conversations(
            llm,
            provider=provider,
            collection=collection,
            only=only,
            echo=lambda m: typer.echo(m, err=True),
        )
    except (LLMError, SuiteError) as exc:
        raise CliError(str(exc)) from exc
    s = result["summary"]
    if report:
        report.mkdir(parents=True, exist_ok=True)
        (report / "conversation.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(s, default=str))
    else:

        def f(v):
            return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

        typer.echo(
            f"conversation · provider {provider} · model {s['model']}: {s['correct_turns']}/{s['turns']} turns "
            f"correct in {s['threads']} threads, {s['invented_facts']} invented facts, {s['fallbacks']} "
            f"fallbacks, {s['model_calls']} model calls, latency p50 {f(s['latency_p50_s'])} s / "
            f"p95 {f(s['latency_p95_s'])} s; tools chosen by "
            + ", ".join(f"{how} {n}" for how, n in s["chosen_by"].items())
        )
        for t in result["turns"]:
            if not t["correct"]:
                typer.echo(f"  FAIL {t['thread']} turn {t['turn']}: {'; '.join(t['problems'])}")
        if report:
            typer.echo(f"report: {report / 'conversation.json'}")
    if s["correct_turns"] < s["turns"] or s["invented_facts"]:
        raise typer.Exit(EXIT_FAILED)


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="The first run's report.json (the reference).")],
    b: Annotated[Path, typer.Argument(help="The second run's report.json.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write compare.json, compare.md and compare.html (every case side by side) here.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show what changed between two runs (e.g. ours and the baseline): metrics side by side and cases
    whose status changed; with --report, every case's status, LLM calls, tokens and seconds in both."""
    from evals.report import compare, load_report, write_comparison

    reports = load_report(a), load_report(b)
    try:
        diff = compare(*reports)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # hand-edited or another tool's
        raise CliError(
            f"{a} or {b}: not an eval report this copilot wrote ({type(exc).__name__}: {exc})"
        ) from exc
    if report:
        files = write_comparison(diff, report)
        typer.echo(f"comparison: {', '.join(str(p) for p in files.values())}", err=True)
    if as_json:
        typer.echo(json.dumps(diff, indent=2, default=str))
        return
    typer.echo(
        f"A: {diff['a']['agent']} {diff['a']['model']} @ {(diff['a']['commit'] or '?')[:12]} ({diff['a']['suite']})"
    )
    typer.echo(
        f"B: {diff['b']['agent']} {diff['b']['model']} @ {(diff['b']['commit'] or '?')[:12]} ({diff['b']['suite']})"
    )
    typer.echo(f"{'metric':<24}{'A':>12}{'B':>12}{'B - A':>12}")
    for name, m in diff["metrics"].items():

        def f(v):
            return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

        typer.echo(f"{name:<24}{f(m['a']):>12}{f(m['b']):>12}{f(m['delta']):>12}")
    if diff["changed"]:
        typer.echo(f"{len(diff['changed'])} case(s) changed status:")
        for c in diff["changed"]:
            typer.echo(f"  {c['case']}: {c['a']} -> {c['b']}")
    else:
        typer.echo("no case changed status")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.add_typer(eval_app, name="eval")
