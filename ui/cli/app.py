"""The ``copilot`` command line.

Heavy libraries (the LLM runtime, Chroma, Gradio) and the product modules that load them are
imported only inside the commands that use them, for start-up time: ``copilot --help`` and the read
commands start fast. Expected failures (a bad
``DATABASE_URL``, an unknown order, a malformed fixture) print one line and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from agent.governance.origin import acting, cli_origin
from agent.settings import apply_offline_defaults
from ui.cli import common as cli_common
from ui.cli.common import EXIT_USAGE, CliError, parse_date
from ui.cli.common import engine as _engine
from ui.cli.common import erp_is_empty as _erp_is_empty
from ui.cli.common import policy as _policy
from ui.cli.common import print_json as _print_json

app = typer.Typer(
    name="copilot",
    help="Fulfillment-exception copilot: what keeps an order from flowing, why, and what to do next.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create and migrate the database; load eval fixtures.", no_args_is_help=True)
orders_app = typer.Typer(help="Look at sales orders.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orders_app, name="orders")
knowledge_app = typer.Typer(help="Index and search the SOPs (the vector store).", no_args_is_help=True)
app.add_typer(knowledge_app, name="knowledge")


def _register_subcommands() -> None:
    """Each feature's commands live in their own module (``ui/cli_*.py``) and add themselves here."""
    from ui.cli import agent as cli_agent
    from ui.cli import evals as cli_evals
    from ui.cli import events as cli_events
    from ui.cli import governance as cli_governance
    from ui.cli import messages as cli_messages
    from ui.cli import ops as cli_ops
    from ui.cli import queue as cli_queue
    from ui.cli import retention as cli_retention
    from ui.cli import serve as cli_serve
    from ui.cli import whatif as cli_whatif

    for module in (
        cli_governance,
        cli_messages,
        cli_agent,
        cli_ops,
        cli_serve,
        cli_evals,
        cli_events,
        cli_queue,
        cli_whatif,
        cli_retention,
    ):
        module.register(app)


_register_subcommands()


def main() -> None:
    apply_offline_defaults()
    try:
        # Every audit event this command appends names the OS account and host it ran as: `--as`
        # is a claim, the database's credentials are the authority.
        with acting(cli_origin()):
            app()
    except cli_common.expected_errors() as exc:
        typer.echo(f"copilot: {cli_common.one_line(exc)}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except ValidationError as exc:
        if exc.title != "Settings":  # a bug's validation error, not the user's environment
            raise
        first = exc.errors()[0]
        typer.echo(
            f"copilot: invalid setting {first['loc'][0] if first['loc'] else ''}: {first['msg']}", err=True
        )
        raise SystemExit(EXIT_USAGE) from None


# ------------------------------------------------------------------------------------------------
# copilot db ...
# ------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the schema of the database named by DATABASE_URL (and, on PostgreSQL, the
    tables of the paused graphs). Safe to run from several processes at once: they take turns."""
    from alembic.util.exc import CommandError

    from agent.checkpoint import setup_checkpoints
    from tools.db import head_revision, redact, upgrade

    engine = _engine(require_schema=False)
    try:
        at = upgrade(engine, revision)
    except CommandError as exc:  # e.g. a revision that does not exist: nothing was migrated
        raise CliError(f"--revision {revision}: {exc} (the head is {head_revision()})") from None
    setup_checkpoints(engine.url.render_as_string(hide_password=False))
    typer.echo(f"database {redact(engine.url)} at schema revision {at}")


@db_app.command("load-fixture")
def db_load_fixture(
    suite: Annotated[Path, typer.Argument(help="Eval suite YAML file (format: domain.md §5).")],
    case: Annotated[str, typer.Option("--case", help="Id of the case whose fixture to load.")],
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Delete every record in the database first (same transaction order)."),
    ] = False,
) -> None:
    """Load one eval case's fixture into the database (run `copilot db upgrade` first)."""
    from tools.db import session_factory
    from tools.fixtures import find_case, load_fixture, read_suite, validate_fixture

    data = read_suite(suite)
    case_data = find_case(data, case)
    validate_fixture(case_data.get("fixture") or {}, case_id=case)  # before --reset deletes anything
    engine = _engine()
    if reset:
        from tools.demo import reset as reset_data

        reset_data(engine)
    with session_factory(engine)() as session:
        counts = load_fixture(session, case_data.get("fixture") or {}, case_id=case)
    summary = ", ".join(f"{n} {t}" for t, n in counts.items()) or "no records"
    typer.echo(f"loaded case {case} of suite {data['suite']}: {summary}")


# ------------------------------------------------------------------------------------------------
# copilot seed / demo
# ------------------------------------------------------------------------------------------------


@app.command("seed")
def seed(
    orders: Annotated[
        int, typer.Option(min=1, help="Orders to generate (90 days of history plus the open book).")
    ] = 10_000,
    seed_: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data.")] = 7,
    as_of: Annotated[
        str | None, typer.Option(help="The data set's 'today' (YYYY-MM-DD); default today.")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Delete existing records first.")] = False,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Generate a regional distributor's ERP/WMS/TMS snapshot (demo data) into DATABASE_URL."""
    from tools.demo import generate
    from tools.demo import reset as reset_data

    day = parse_date(as_of, "--as-of")
    engine = _engine()
    if not _erp_is_empty(engine):
        if not reset:
            raise CliError("the database already holds records: pass --reset to replace them")
        reset_data(engine)
    report = generate(engine, orders=orders, seed=seed_, as_of=day, progress=progress)
    rows = report.rows
    typer.echo(
        f"seeded {rows.get('orders', 0):,} orders with {rows.get('order_lines', 0):,} lines "
        f"({report.open_orders:,} open) as of {report.as_of} with seed {report.seed} "
        f"in {report.elapsed:.1f} s"
    )


@app.command("demo")
def demo(
    orders: Annotated[
        int, typer.Option(min=1, help="Orders to generate when the database is empty.")
    ] = 10_000,
    seed_: Annotated[int, typer.Option("--seed", help="Random seed for the demo data.")] = 7,
) -> None:
    """Set up the database (migrate, seed if empty), index the SOPs, print a triage-ready summary
    and the demo users (one per role) with fresh API tokens for `copilot serve`."""
    from ui.cli.summary import print_summary

    engine = _engine(require_schema=False)
    from tools.db import upgrade

    upgrade(engine)
    from agent.governance.audit_key import write_demo_key
    from agent.settings import get_settings

    settings = get_settings()
    if not settings.audit_key.strip():
        key_path = write_demo_key(settings.var_dir)
        typer.echo(
            f"audit key: {key_path} (mode 0600, kept; production sets COPILOT_AUDIT_KEY from its secret store)"
        )
    if _erp_is_empty(engine):
        from tools.demo import generate

        typer.echo(f"seeding demo data ({orders:,} orders, seed {seed_}) ...")
        generate(engine, orders=orders, seed=seed_)
    from knowledge.ingest import ingest

    typer.echo("indexing the shipped SOPs (unchanged ones are skipped) ...")
    typer.echo(ingest(cli_common.knowledge_collection(), None, echo=typer.echo).summary())
    _triage_book(engine)
    print_summary(engine)
    typer.echo(
        "to watch exceptions arrive in the work queues: `copilot serve --simulate 2` (a simulated feed of "
        "stock adjustments, carrier disruptions, late POs and new orders), or `copilot events simulate` "
        "beside a running server"
    )
    from ui.cli.serve import demo_tokens

    demo_tokens()


def _triage_book(engine) -> None:
    """Triage the whole open book and record its exceptions, so the work queues hold them."""
    import os
    import sys
    import time

    from tqdm import tqdm

    from agent.governance.events import log_triage_book
    from agent.triage.service import triage_open_book
    from tools.dataset import open_order_ids
    from tools.db import session_factory

    started = time.perf_counter()
    with session_factory(engine)() as session:
        total = len(open_order_ids(session))
        bar = tqdm(
            total=total,
            desc="triaging the open book",
            unit=" orders",
            file=sys.stderr,
            disable=not sys.stderr.isatty() or bool(os.environ.get("CI")),
        )
        seen: list[dict[str, Any]] = []  # what the audit summary counts, not the whole results
        with bar:
            for n, result in enumerate(triage_open_book(session, _policy()), 1):
                seen.append({"exceptions": bool(result["exceptions"])})
                bar.update()
                if n % 1_000 == 0:
                    session.commit()
        log_triage_book(session, seen, source="demo", actor="cli")
        session.commit()
    flagged = sum(1 for r in seen if r["exceptions"])
    typer.echo(
        f"triaged the open book: {total:,} orders, {flagged:,} with exceptions, now in the work queues "
        f"({time.perf_counter() - started:.1f} s)"
    )


# ------------------------------------------------------------------------------------------------
# copilot triage
# ------------------------------------------------------------------------------------------------


@app.command("triage")
def triage(
    order_ids: Annotated[
        list[str] | None, typer.Argument(help="Order ids such as SO-100042.", show_default=False)
    ] = None,
    all_open: Annotated[
        bool, typer.Option("--all-open", help="Triage every open, held or released order.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="With --all-open: at most this many orders.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per order.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Add the model's explanation of each order, citing the SOPs "
            "(fact-only text, marked fallback, when the model fails).",
        ),
    ] = False,
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="Triage as this user: a user limited to some sites sees only theirs."),
    ] = None,
) -> None:
    """Find what keeps each order from flowing, with evidence, and the next-best action.

    Detection and ranking are deterministic (the policy file decides). The order's exceptions are
    recorded in the exceptions table; an unknown order is reported and the others still triaged
    (exit code 2 if any was unknown). With --explain the language model explains each order from
    its facts and the SOPs (one call per order); with --json each object gains "explanation".
    """
    from agent.governance.events import log_triage, log_triage_book
    from agent.governance.origin import current_origin
    from agent.triage.service import triage_open_book, triage_orders
    from tools.db import session_factory
    from tools.sites import visible_orders

    if order_ids and all_open:
        raise CliError("give order ids or --all-open, not both")
    if not order_ids and not all_open:
        raise CliError("name one or more order ids, or pass --all-open")
    if limit is not None and not all_open:
        raise CliError("--limit goes with --all-open (named orders are all triaged)")
    policy = _policy()
    engine = _engine()
    # --as: another site's order is "not found", as an unknown one
    factory = cli_common.scoped_factory(session_factory(engine), as_user)
    origin = current_origin()
    asked_by = (origin and origin.os_user) or "cli"  # who asked: the OS account the command ran as
    results: list[dict[str, Any]] = []
    near: dict[str, list[str]] = {}
    with factory() as session:
        if all_open:  # the whole book in batches: the same results as triage_orders on each
            for n, result in enumerate(triage_open_book(session, policy, limit=limit), 1):
                results.append(result)
                if n % 200 == 0:
                    session.commit()
            mine = visible_orders(session, [r["order_id"] for r in results])  # --as: that user's sites
            results = sorted((r for r in results if r["order_id"] in mine), key=lambda r: r["order_id"])
            log_triage_book(session, results, source="cli", actor=asked_by)
        else:
            ids, near = _typed_ids(session, order_ids or [], policy)
            results = triage_orders(session, ids, policy, commit_every=200)
            log_triage(session, results, source="cli", actor=asked_by)
        session.commit()
    if explain:
        from ui.cli.agent import explain_results, render_explained

        results = explain_results(factory, policy, results)
    if as_json:
        _print_json(results)
    elif explain:
        render_explained(results)
    else:
        from ui.cli.render import render_triage

        render_triage(results)
    for typed_id, misses in near.items():  # on stderr: --json output stays one JSON document
        typer.echo(f"copilot: order {typed_id} not found; did you mean {' or '.join(misses)}?", err=True)
    if any("error" in r for r in results):
        raise typer.Exit(EXIT_USAGE)


def _typed_ids(session, order_ids: list[str], policy) -> tuple[list[str], dict[str, list[str]]]:
    """Order ids as a person types them (``so-100042``, ``SO 100042``, ``SO#100042``) read as the
    orders they name, as the API and chat read them; an id no order has is kept as typed, with the
    ids one edit away (``agent.triage.order_numbers``)."""
    from agent.triage.order_numbers import resolve_one

    ids: list[str] = []
    near: dict[str, list[str]] = {}
    for raw in order_ids:
        found, misses = resolve_one(session, raw, policy.order_numbers)
        ids.append(found or raw.strip())
        if misses:
            near[raw.strip()] = misses
    return ids, near


# ------------------------------------------------------------------------------------------------
# copilot orders ...
# ------------------------------------------------------------------------------------------------


@orders_app.command("show")
def orders_show(
    order_id: Annotated[str, typer.Argument(help="Order id such as SO-100042.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_user: Annotated[
        str | None, typer.Option("--as", help="As this user: another site's order is not found.")
    ] = None,
) -> None:
    """Print an order with its lines, customer and credit position, stock and shipments."""
    from agent.triage.order_numbers import resolve_one
    from tools.db import read_only, session_factory
    from tools.errors import OrderNotFound
    from tools.orders import order_view

    engine = _engine()
    with read_only(cli_common.scoped_factory(session_factory(engine), as_user)) as session:
        found, near = resolve_one(session, order_id, _policy().order_numbers)  # so-100042 too
        if found is None:
            raise OrderNotFound(order_id.strip(), near)
        view = order_view(session, found)
    if as_json:
        _print_json(view)
    else:
        from ui.cli.render import render_order

        render_order(view)


# ------------------------------------------------------------------------------------------------
# copilot knowledge ...
# ------------------------------------------------------------------------------------------------


@knowledge_app.command("ingest")
def knowledge_ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders (default: the shipped SOPs).", show_default=False),
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Index SOP documents (Markdown or text): unchanged files are skipped, changed ones replaced,
    files removed from an ingested folder deleted from the index."""
    from knowledge.ingest import ingest

    report = ingest(cli_common.knowledge_collection(), paths or None, echo=typer.echo, progress=progress)
    typer.echo(report.summary())
    if any(not p.exists() for p in paths or []):  # a typo'd path: the rest is indexed, the exit says so
        raise typer.Exit(EXIT_USAGE)


@knowledge_app.command("search")
def knowledge_search(
    query: Annotated[str, typer.Argument(help='A question, e.g. "who may approve a credit release".')],
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Only SOPs for this exception type, e.g. CREDIT_HOLD (repeatable).",
            show_default=False,
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the SOP passages closest to a question, with citations and scores."""
    from dataclasses import asdict

    from knowledge.retrieve import retrieve
    from tools.domain import EXCEPTION_TYPES

    wanted = [t.strip().upper() for t in types or []]
    for t in wanted:
        cli_common.check_choice(t, EXCEPTION_TYPES, "--type")
    passages = retrieve(query, wanted, k=k, collection=cli_common.retrieval_collection())
    if as_json:
        _print_json([asdict(p) for p in passages])
        return
    if not passages:
        typer.echo("no passages (is the index empty? run `copilot knowledge ingest`)")
    for p in passages:
        typer.echo(f"{p.citation}  {p.heading}  (score {p.score:.3f})\n{p.text}\n")


@knowledge_app.command("eval")
def knowledge_eval(
    questions: Annotated[
        Path | None,
        typer.Option(help="Question set (YAML); default evals/retrieval/questions.yaml.", show_default=False),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Passages ranked per question.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure retrieval quality: recall@1, recall@3 and MRR, with and without the type filter.

    Ingests the shipped SOPs into a temporary index with the local embedding model, asks every
    question of the set and reports the ranks of the expected citations.
    """
    from knowledge.quality import QUESTIONS, QuestionSetError, load_questions
    from knowledge.quality import main as quality_main

    try:
        load_questions(questions or QUESTIONS)  # a bad set: one line, exit 2, like every command
    except QuestionSetError as exc:
        raise CliError(str(exc)) from None
    code = quality_main(
        ["--questions", str(questions or QUESTIONS), "-k", str(k), *(["--json"] if as_json else [])]
    )
    if code:
        raise typer.Exit(code)


@knowledge_app.command("list")
def knowledge_list() -> None:
    """Show which documents are indexed, with their chunk counts."""
    col = cli_common.knowledge_collection()
    docs: dict[str, dict[str, Any]] = {}
    for meta in col.get(include=["metadatas"])["metadatas"] or []:
        entry = docs.setdefault(
            str(meta["source"]), {"doc_id": meta["doc_id"], "title": meta.get("title", ""), "chunks": 0}
        )
        entry["chunks"] += 1
    for source, d in sorted(docs.items(), key=lambda kv: kv[1]["doc_id"]):
        typer.echo(f"{d['doc_id']:<16} {d['chunks']:>3} chunks  {d['title']}  ({source})")
    typer.echo(f"{len(docs)} documents, {sum(d['chunks'] for d in docs.values())} chunks")


if __name__ == "__main__":  # pragma: no cover
    main()
