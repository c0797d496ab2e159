"""Suite-wide test set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _recordings_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Agents record calls by default: gateways started by tests write their recordings to a
    temporary folder (still exercising the recorder), never into the working tree."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RECORDINGS_DIR", str(tmp_path_factory.mktemp("recordings")))
    yield
    patch.undo()
