"""The `gateway` command: `serve`, `emulator`, `agents check`, `call`, `replay`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import structlog

from gateway import gateway_version
from gateway.agents.config import AgentConfigError, load_agents
from gateway.ops.logs import configure_logging
from gateway.settings import (
    SettingsError,
    load_settings,
    settings_help,
    unknown_env_file_keys,
)

log = structlog.get_logger("gateway.cli")


def carrier_names() -> list[str]:
    """The carriers `gateway call --carrier` speaks (gateway.telephony.carriers)."""
    from gateway.telephony.carriers import PHONES

    return sorted(PHONES)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Telephony voice-agent gateway: phone calls (Twilio media streams) answered "
        "by Gemini Live agents. Settings come from the environment or ./.env "
        "(`gateway serve --help` lists them).",
    )
    parser.add_argument("--version", action="version", version=f"gateway {gateway_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="answer calls: /twiml, /media, /softphone, /metrics (settings from env / .env)",
        description="Answer calls on HOST:PORT with the agents in AGENTS_DIR; without Google\n"
        "credentials Live is the built-in emulator.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="listen address (overrides HOST; default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (overrides PORT; default 8080)")

    emulator = commands.add_parser(
        "emulator",
        help="run the Live emulator on its own (point a gateway's LIVE_URL at it)",
        description="The built-in Gemini Live emulator as a server of its own: the Live wire "
        "protocol on ws://HOST:PORT.",
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="listen address (default %(default)s)"
    )
    emulator.add_argument(
        "--port", type=int, default=9090, help="listen port (default %(default)s)"
    )
    emulator.add_argument(
        "--script", type=Path, metavar="FILE", help="YAML script of scripted turns (default: none)"
    )

    agents = commands.add_parser(
        "agents", help="agent configuration tools", description="Agent configuration tools."
    )
    agents_commands = agents.add_subparsers(
        dest="agents_command", required=True, metavar="COMMAND"
    )
    check = agents_commands.add_parser(
        "check",
        help="validate every agent file, reporting each problem as file:line: field",
        description="Validate every agent file (fields, instruction files, tools, model rules); "
        "exit 1 listing every problem.",
    )
    check.add_argument(
        "directory", nargs="?", type=Path, metavar="DIR", help="agents folder (default AGENTS_DIR)"
    )

    call = commands.add_parser(
        "call",
        help="call an agent with a WAV file, as a phone would, and save its spoken reply",
        description="Call an agent over the media-stream protocol: say a WAV file, wait for the "
        "reply, write it as a WAV and print the transcript.",
    )
    call.add_argument("--agent", help="agent name (default: the default agent)")
    call.add_argument(
        "--say", type=Path, required=True, metavar="WAV", help="WAV file to say (any rate)"
    )
    call.add_argument(
        "--out", type=Path, required=True, metavar="WAV", help="reply WAV to write (8 kHz)"
    )
    call.add_argument(
        "--carrier",
        default="twilio",
        choices=carrier_names(),
        help="speak this carrier's media-stream protocol (default %(default)s)",
    )
    call.add_argument(
        "--url",
        help="media stream of a running gateway (ws://127.0.0.1:8080/media for Twilio, "
        "ws://host:port/NAME/media for carrier NAME); "
        "default: a gateway and the Live emulator in this process",
    )
    call.add_argument(
        "--pace",
        choices=("auto", "realtime", "fast"),
        default="auto",
        help="send frames every 20 ms (realtime) or at once (fast); "
        "auto (default): realtime with --url",
    )
    call.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for a reply (default %(default)s)",
    )

    from gateway.recording.replay.player import add_replay_arguments

    replay = commands.add_parser(
        "replay",
        help="replay a recorded call (.jsonl) and check the gateway still matches it",
        description="Replay a recorded call through a gateway and compare what it sends with "
        "the recording: exit 0 when it matches, 1 on a difference, 2 when it cannot run.",
    )
    add_replay_arguments(replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    flags = {
        name: value
        for name in ("host", "port")
        if (value := getattr(args, name, None)) is not None
    }
    try:
        settings = load_settings(**flags)  # `serve --host/--port` win over HOST/PORT
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    for key, nearest in unknown_env_file_keys(".env"):
        log.warning("env_file_unknown_key", key=key, did_you_mean=nearest, file=".env")

    if args.command == "agents":
        return _agents_check(args.directory or settings.agents_dir, settings.model)
    if args.command == "emulator":
        return _run_emulator(args.host, args.port, args.script)
    if args.command == "replay":
        from gateway.recording.replay.player import run_replay_command

        configure_logging("debug" if settings.log_level == "debug" else "warning")
        return run_replay_command(args, settings)
    if args.command == "call":
        from gateway.softphone.cli import run_call_command

        configure_logging("debug" if settings.log_level == "debug" else "warning")
        return run_call_command(
            settings, agent=args.agent, say=args.say, out=args.out, url=args.url,
            pace=args.pace, timeout_s=args.timeout, carrier=args.carrier,
        )
    try:
        agents = load_agents(settings.agents_dir, default_model=settings.model)
    except AgentConfigError as exc:
        print(f"gateway: refusing to start, broken agents:\n{exc}", file=sys.stderr)
        return 2
    from gateway import event_loop
    from gateway.server import serve

    try:
        event_loop.run(serve(settings, agents))  # on uvloop (a dependency but on Windows)
    except OSError as exc:  # cannot listen: one line naming the settings, no traceback
        reason = exc.strerror or str(exc)
        print(
            f"gateway: cannot listen on {settings.host}:{settings.port} ({reason}); "
            "choose another PORT (or HOST)",
            file=sys.stderr,
        )
        return 2
    return 0


def _agents_check(directory: Path, default_model: str) -> int:
    try:
        agents = load_agents(directory, default_model=default_model)
    except AgentConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    for agent in agents.agents.values():
        lines = ", ".join(agent.lines) or "(no lines)"
        print(f"ok  {agent.name}: {lines} ({agent.model_id(default_model)})")
    return 0


def _run_emulator(host: str, port: int, script_path: Path | None) -> int:
    from gateway.live.emulator.server import EmulatorScript, serve_emulator

    script = EmulatorScript.from_yaml(script_path) if script_path else None
    try:
        asyncio.run(serve_emulator(host, port, script))
    except KeyboardInterrupt:
        pass
    return 0
