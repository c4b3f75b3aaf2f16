"""Shared fixtures: the paper's networks."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

import fiberscope as fs

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one core per test worker (pytest -n 2 on two cores): no oversubscribed thread pools
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def net1() -> nn.Module:
    return fs.load_model("surface_1")


@pytest.fixture(scope="session")
def net2() -> nn.Module:
    return fs.load_model("surface_2")


@pytest.fixture(scope="session")
def binary_net() -> nn.Module:
    return fs.load_model("binary")


@pytest.fixture(scope="session")
def thermo_net() -> nn.Module:
    return fs.load_model("thermodynamics")


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):  # noqa: ANN201 - a hook wrapper
    """An ``Interrupted`` escaping a test fails that test instead of ending the whole run.

    ``fiberscope.Interrupted`` is a ``KeyboardInterrupt`` (so user code that does not care still
    stops), which pytest takes for the user's Ctrl-C: a CI run once stopped at 20 % on one.
    """
    try:
        return (yield)
    except fs.Interrupted as exc:
        raise AssertionError(f"fiberscope.Interrupted escaped the test: {exc}") from exc
