"""Shared fixtures: the paper's networks."""

from __future__ import annotations

import pytest
from torch import nn

import fiberscope as fs


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
