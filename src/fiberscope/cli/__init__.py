"""The ``fiberscope`` command line (typer + rich).

Importing this package registers every command on the typer app of
:mod:`fiberscope.cli.common` (which the command modules import; nothing imports back up), and
:mod:`fiberscope.cli.main` runs it: ``main(argv) -> int`` without a subprocess (for tests),
``run()`` as the console script. Every error a user can cause prints one line on stderr and
exits with code 2; no output file is written in that case.
"""

# the order of registration is the order of the help
from . import trace_cmd, demo_cmd, across, walk_cmd, run_cmd, app_cmd  # noqa: I001

__all__ = ["across", "app_cmd", "demo_cmd", "run_cmd", "trace_cmd", "walk_cmd"]
