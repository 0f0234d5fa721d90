"""Event commands: `copilot events replay|list`, `copilot worker` (domain.md §8).

Import only light modules at the top (typer, ``ui.cli.common``); heavy ones inside the commands,
for start-up time. A bad event exits 2 naming the event and the path of the bad key; nothing of it
is applied.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ui.cli.common import CliError, engine, policy, print_json

events_app = typer.Typer(
    help="Events from ERP/WMS/TMS: replay files, list the inbox, simulate a feed.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``copilot`` application."""
    app.add_typer(events_app, name="events")
    app.command("worker")(worker)


def _factory():
    from tools.db import session_factory

    return session_factory(engine())


def _read_jsonl(path: Path) -> list[tuple[int, object]]:
    """(line number, the line's JSON) of every line that is not blank; a line that is not JSON
    gives a :class:`CliError` in place of its value (the caller reports the first bad line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text") from exc
    out: list[tuple[int, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            out.append((n, CliError(f"{path} line {n}: not a JSON object: {exc.msg} at column {exc.colno}")))
        except RecursionError:
            out.append((n, CliError(f"{path} line {n}: not a JSON object: nested too deeply")))
    return out


def _bar(total: int, desc: str):
    import os

    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=" events",
        file=sys.stderr,
        disable=not sys.stderr.isatty() or bool(os.environ.get("CI")),
        dynamic_ncols=True,
    )


@events_app.command("replay")
def replay(
    file: Annotated[Path, typer.Argument(help="Events, one JSON object a line (domain.md §8).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Store the file's events, apply them in order per source and triage again the open orders
    they affect, before returning. A bad event (unknown table or field, wrong type, a negative
    quantity or price, dangling key) exits 2 naming it and the path of the bad key; then nothing of
    the file is stored. A file without an event (empty, or blank lines only) exits 2 too."""
    from agent.flow import drain
    from tools.events import EventError, dangling_before, parse_event, receive

    lines = _read_jsonl(file)
    if not lines:  # a truncated export or the wrong file: "0 events read" would pass for a replay
        raise CliError(f"{file} holds no events")
    parsed: list[tuple[int, Any]] = []  # (line number, event)
    bad: tuple[int, Exception] | None = None  # the first line that is not a valid event
    for n, raw in lines:
        try:
            if isinstance(raw, CliError):
                raise raw
            parsed.append((n, parse_event(raw)))
        except (EventError, CliError) as exc:
            bad = bad or (n, exc)
    factory = _factory()
    if bad is not None:
        # the first bad event in the file's order: a dangling reference of an earlier line comes first
        line_no, problem = bad
        with factory() as session:
            earlier = dangling_before(session, parsed, line_no)
        if earlier is not None:
            line_no, problem = earlier
        if isinstance(problem, CliError):
            raise problem
        raise CliError(f"{file} line {line_no}: {problem}; nothing was stored") from problem
    events = [e for _, e in parsed]
    line_of = {id(e): n for n, e in parsed}
    with factory() as session:
        try:
            stored, duplicates = receive(session, events, channel="replay")
        except EventError as exc:
            culprit = next((line_of[id(e)] for e in events if e.label == exc.event), None)
            where = f" line {culprit}" if culprit else ""
            raise CliError(f"{file}{where}: {exc}; nothing was stored") from exc
        session.commit()
    mine = {(e.source, e.event_id) for e in events}
    with _bar(stored, "applying") as bar:
        outcomes = drain(factory, policy(), on_event=lambda _: bar.update())
    failed = [o for o in outcomes if o.status == "failed" and tuple(o.label.split("/", 1)) in mine]
    summary: dict[str, Any] = {
        "read": len(events),
        "stored": stored,
        "duplicates": duplicates,
        "applied": sum(1 for o in outcomes if o.status == "applied"),
        "failed": len(failed),
        "orders_retriaged": sum(o.orders for o in outcomes),
        "exceptions": {
            "opened": sum(o.opened for o in outcomes),
            "changed": sum(o.changed for o in outcomes),
            "resolved": sum(o.resolved for o in outcomes),
        },
    }
    if as_json:
        print_json(summary | {"errors": [{"event": o.label, "error": o.error} for o in failed]})
    else:
        x = summary["exceptions"]
        typer.echo(
            f"{summary['read']} events read: {stored} stored, {duplicates} already received (ignored); "
            f"{summary['applied']} applied, {len(failed)} failed; {summary['orders_retriaged']} order "
            f"triages: {x['opened']} exceptions opened, {x['changed']} changed, {x['resolved']} resolved"
        )
    if failed:
        first = failed[0]
        culprit = next((n for n, e in parsed if e.label == first.label), None)
        raise CliError(f"{file} line {culprit}: event {first.label} failed: {first.error}")


@events_app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option(help="Only events with this status: received, applied or failed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The inbox, newest first: each event with its status (received, applied, failed and why)."""
    from tools.db import read_only
    from tools.events import inbox_counts, list_events

    if status is not None and status not in ("received", "applied", "failed"):
        raise CliError("--status must be received, applied or failed")
    with read_only(_factory()) as session:
        rows, counts = list_events(session, status=status, limit=limit), inbox_counts(session)
    if as_json:
        print_json({"counts": counts, "events": rows})
        return
    typer.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    for r in rows:
        tail = f"  {r['error']}" if r["error"] else f"  {r['orders_retriaged']} orders triaged"
        typer.echo(
            f"{r['id']:>6}  {r['source']}/{r['event_id']}  {r['type']}  {r['occurred_at']}  {r['status']}{tail}"
        )


def worker(
    once: Annotated[bool, typer.Option("--once", help="Apply what is waiting, then exit.")] = False,
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between looks at an empty inbox.")] = 1.0,
) -> None:
    """Apply stored events in order per source and triage again the open orders they affect.
    Several workers may share the inbox on PostgreSQL. Also carries on approved requests a crashed
    process left unexecuted (COPILOT_RESUME_AFTER_S), and explains the top of the work queues ahead
    of time (COPILOT_PREEXPLAIN; the model loads in the background). Ctrl-C or SIGTERM stops after
    the current batch of events (each batch is one transaction: nothing stays claimed or half-applied)."""
    from agent.flow import drain, run_worker
    from agent.governance.recovery import RecoveryLoop, process_name
    from agent.settings import get_settings
    from agent.telemetry import configure_logging
    from ui.api.preexplain import make_preexplainer, worker_parts

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    factory, pol = _factory(), policy()
    if once:
        outcomes = drain(factory, pol)
        failed = sum(1 for o in outcomes if o.status == "failed")
        typer.echo(f"{len(outcomes) - failed} events applied, {failed} failed")
        return
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo("worker: applying events (Ctrl-C to stop)")
    recovery = RecoveryLoop(
        factory, pol, after_s=settings.resume_after_s, actor=process_name("worker")
    ).start()
    model, index = worker_parts(settings)
    preexplainer = make_preexplainer(factory, pol, settings, llm=model, collection=index)
    if preexplainer is not None:
        preexplainer.start()
    try:
        run_worker(factory, pol, stop, poll_s=poll)
    finally:
        recovery.stop()
        if preexplainer is not None:
            preexplainer.stop()
    typer.echo("worker: stopped")


@events_app.command("simulate")
def simulate(
    rate: Annotated[float, typer.Option(min=0.1, max=1000, help="Events per second.")] = 2.0,
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="Stop after this many events.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same feed.")] = 7,
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply each event here too (when no worker or serve is running).")
    ] = False,
) -> None:
    """A realistic feed of source-system changes into the inbox — stock adjustments, delayed shipments
    and carrier disruptions, late purchase orders, new orders, customer balances — at --rate events
    a second, until --count or Ctrl-C. `copilot serve` (or `copilot worker`) applies them, and the
    work queues show the exceptions they cause."""
    from agent.flow import drain
    from tools.events.simulate import run_feed

    factory = _factory()
    pol = policy() if apply else None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with _bar(count, "simulating") as bar:

        def tick() -> None:
            if pol is not None:
                drain(factory, pol)
            bar.update()

        try:
            sent = run_feed(factory, rate=rate, count=count, stop=stop, seed=seed, on_event=tick)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    typer.echo(f"{sent} simulated events stored{' and applied' if apply else ''} (source erp, wms, tms)")


@events_app.command("consume")
def consume_cmd(
    broker: Annotated[
        str, typer.Option("--broker", help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/")
    ] = "amqp://guest:guest@127.0.0.1:5672/",
    queue: Annotated[
        str, typer.Option("--queue", help="The queue the source systems publish to.")
    ] = "copilot.events",
    drain: Annotated[
        bool, typer.Option("--drain", help="Stop once the queue has been empty for a second.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply what was stored here too (no worker running).")
    ] = False,
) -> None:
    """Read events from a RabbitMQ queue into the inbox. A message is acknowledged only once its
    events are stored; a redelivery is a duplicate, ignored; a poison message goes to <queue>.dead
    with the reason. Ctrl-C stops."""
    from pika.exceptions import AMQPError

    from agent.flow import drain as apply_waiting
    from tools.db import redact
    from tools.events.broker import BrokerUrlError, broker_parameters, consume

    try:
        broker_parameters(broker)
    except BrokerUrlError as exc:
        raise CliError(f"--broker {redact(broker)}: {exc}") from None
    factory = _factory()
    pol = policy() if apply else None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        result = consume(
            factory,
            broker,
            queue,
            drain=drain,
            stop=stop,
            on_stored=(lambda _n: apply_waiting(factory, pol)) if pol is not None else None,
        )
    except AMQPError as exc:
        raise CliError(f"cannot consume {queue!r} from {redact(broker)}: {exc!r}") from exc
    typer.echo(
        f"{result.messages} messages: {result.stored} events stored, {result.duplicates} already received, "
        f"{result.dead_lettered} dead-lettered to {queue}.dead"
    )
