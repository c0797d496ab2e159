"""Suite-wide test set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.generations import DEFAULT_GENERATION, Generation


@pytest.fixture(autouse=True, scope="session")
def _recordings_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Agents record calls by default: gateways started by tests write their recordings to a
    temporary folder (still exercising the recorder), never into the working tree."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RECORDINGS_DIR", str(tmp_path_factory.mktemp("recordings")))
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _caller_audio_at_any_speed() -> Iterator[None]:
    """Test callers talk to a 50× emulator and send audio faster than real time: gateways
    started by tests hold no audio-time budget (MAX_CALLER_AUDIO_SPEED=0) unless the test
    sets one (tests/test_bounded_input.py tests it)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MAX_CALLER_AUDIO_SPEED", "0")
    yield
    patch.undo()


@pytest.fixture
def generation(request: pytest.FixtureRequest) -> Generation:
    """The Live model generation × backend a test runs against: gemini-3.8-live on the
    Developer API, unless the test is marked `EVERY_GENERATION` (tests/generations.py)."""
    return getattr(request, "param", DEFAULT_GENERATION)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _structlog_defaults_after_each_test() -> Iterator[None]:
    """A test that configures logging (the CLI's `configure_logging("warning")`, say) must not
    filter what later tests capture with `structlog.testing.capture_logs`."""
    yield
    structlog.reset_defaults()
