"""Write a new migration from the difference between the models and the migrations' head.

Usage: ``.venv/bin/python -m tools.migrations.revise "add a column"`` (a developer tool, not
shipped behaviour): upgrades a scratch SQLite database to head, then autogenerates against it.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from tools.db import _alembic_config, make_engine, upgrade


def main() -> None:
    message = " ".join(sys.argv[1:]) or "revision"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        upgrade(engine)
        with engine.begin() as conn:
            cfg = _alembic_config(conn)
            cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
            versions = Path(__file__).parent / "versions"
            numbers = [int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py")]
            rev_id = f"{max(numbers, default=0) + 1:04d}"
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
