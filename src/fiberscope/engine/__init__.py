"""The one continuation engine that every walk on or across classes runs on.

Parts: the members' state (:class:`Members`), direction policies chosen by name
(:func:`policy`, see :mod:`.policies`), one corrector (:func:`correct`), one step controller
(:class:`StepControl`), box handling (:mod:`.box`), stop reasons (:data:`STOP_REASONS`), a
recorder (:class:`Recorder`), one run loop (:func:`run`) and sessions of several phases with
progress, interruption, checkpoints and resume (:class:`Session`, :class:`Snapshot`).
"""

from . import policies  # noqa: F401  (registers the policies)
from .control import StepControl, check_step_moves, smallest_move
from .corrector import Correction, correct, evaluate
from .loop import Hooks, RunInterrupted, RunState, run
from .policy import Advance, Context, Policy, Proposal, Stop, Verdict, policy, register
from .recorder import Recorder
from .session import Session, check_resume
from .state import STOP_REASONS, Members, Snapshot
from .stats import Stats

__all__ = [
    "STOP_REASONS",
    "Advance",
    "Context",
    "Correction",
    "Hooks",
    "Members",
    "Policy",
    "Proposal",
    "Recorder",
    "RunInterrupted",
    "RunState",
    "Session",
    "Snapshot",
    "Stats",
    "StepControl",
    "Stop",
    "Verdict",
    "check_resume",
    "check_step_moves",
    "correct",
    "evaluate",
    "policy",
    "register",
    "run",
    "smallest_move",
]
