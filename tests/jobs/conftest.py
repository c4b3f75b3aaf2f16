"""Fixtures of the job tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from job_files import write_models


@pytest.fixture(scope="session")
def models_file(tmp_path_factory) -> Path:
    return write_models(tmp_path_factory.mktemp("models"))
