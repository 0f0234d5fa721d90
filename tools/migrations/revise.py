"""Write a new migration from the difference between the models and the migrations' head.

Usage: ``.venv/bin/python -m tools.migrations.revise "add a column"`` (a developer tool, not
shipped behaviour): upgrades a scratch SQLite database to head, then autogenerates against it.
When the models and the migrations agree, nothing is written (exit 1).
"""

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alembic import command

from tools.db import _alembic_config, make_engine, upgrade

VERSIONS = Path(__file__).parent / "versions"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.migrations.revise",
        description="Write the next migration from the difference between tools/models.py and the "
        "migrations' head.",
    )
    parser.add_argument("message", nargs="+", help='what changed, e.g. "add a column"')
    message = " ".join(parser.parse_args(argv).message)
    empty: list[bool] = []

    def skip_empty(context, revision, directives) -> None:  # no difference: write no file
        if directives and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            empty.append(True)

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(engine)
        with engine.begin() as conn:
            cfg = _alembic_config(conn)
            cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
            numbers = [int(p.name[:4]) for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")]
            rev_id = f"{max(numbers, default=0) + 1:04d}"
            command.revision(
                cfg,
                message=message,
                autogenerate=True,
                rev_id=rev_id,
                process_revision_directives=skip_empty,
            )
    if empty:
        print("the models and the migrations agree: no migration written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
