"""``python -m fiberscope``: the command line (same as the ``fiberscope`` script)."""

from .cli.main import run

if __name__ == "__main__":
    run()
