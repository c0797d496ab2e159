"""`--help` for every command and option: each says what it does and its default, `serve`
lists every setting, and no help names an internal module."""

from __future__ import annotations

import argparse
import re

import pytest

from gateway import cli
from gateway.settings import Settings, settings_help


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[
    tuple[tuple[str, ...], argparse.ArgumentParser]
]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(cli._build_parser())
INTERNAL = re.compile(r"\bgateway\.[a-z_]+|\b[a-z]+_[a-z_]+\.py\b|\b[a-z]+_(cli|rules|compare)\b")


def test_every_command_is_reached() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert names >= {"", "serve", "emulator", "agents", "agents check", "call", "replay"}


@pytest.mark.parametrize(
    ("path", "parser"), COMMANDS, ids=[" ".join(path) or "gateway" for path, _ in COMMANDS]
)
def test_every_option_and_command_has_help_with_its_default(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    assert parser.description, f"gateway {' '.join(path)} has no description"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{choice.dest} has no help"
            continue
        assert action.help, f"{path} {action.dest} has no help"
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if has_default and not action.required:
            text = action.help % {"default": action.default}
            assert "default" in text, f"{path} {action.dest}: help does not say its default"
    text = parser.format_help()
    assert not INTERNAL.search(text), INTERNAL.search(text)


def test_serve_help_lists_every_setting_with_its_default() -> None:
    [(_, serve)] = [(p, s) for p, s in COMMANDS if p == ("serve",)]
    text = serve.format_help()
    for name, info in Settings.model_fields.items():
        assert f"  {name.upper()} (default: " in text, name
        assert info.description, f"{name} has no docstring"
    assert "PORT (default: 8080)" in text and "RECORD_CALLS (default: agent)" in text
    assert "LIVE_BACKEND (default: unset)" in text


def test_the_settings_help_wraps_long_descriptions() -> None:
    assert max(len(line) for line in settings_help(width=80).splitlines()) <= 80
