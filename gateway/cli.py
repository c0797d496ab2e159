"""The `gateway` command: `serve`, `emulator`, `agents check`, `call`, `replay`, `dial`,
`campaign`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # `gateway serve` never imports the campaign code
    from gateway.outbound.campaign import CampaignSettings
    from gateway.outbound.campaign_rules import CallingWindow, NumbersFile
    from gateway.outbound.client import CallRecord

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
    _add_dial_parser(commands)
    _add_campaign_parser(commands)
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
    if args.command in ("dial", "campaign"):
        configure_logging("debug" if settings.log_level == "debug" else "warning")
        run = _dial if args.command == "dial" else _campaign
        return run(args, _api_target(args, settings))
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


# ------------------------------------------------------------------ dial and campaign

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
EXIT_NOT_ANSWERED = 1
"""`dial --wait`: the call ended busy, no-answer, failed or canceled."""
EXIT_ERROR = 2
"""The request or its input was refused, or the gateway could not be reached."""
EXIT_INTERRUPTED = 130


def _variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name.strip(), value


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0")
        return value

    return parse


def _not_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def _window(text: str) -> CallingWindow:
    from gateway.outbound.campaign_rules import CallingWindow

    try:
        return CallingWindow.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time_zone(text: str) -> str:
    from gateway.outbound.campaign_rules import zone

    if zone(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone (e.g. Europe/London)")
    return text


def _add_api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        metavar="URL",
        help=f"the gateway's base URL (default: $GATEWAY_URL, else {DEFAULT_GATEWAY_URL})",
    )
    parser.add_argument(
        "--token", help="bearer token of the call API (default: $API_TOKEN)"
    )
    parser.add_argument("--from", dest="from_", metavar="NUMBER",
                        help="caller id in E.164 (default: the gateway's)")
    parser.add_argument("--carrier", help="carrier to call through (default: the gateway's)")


def _add_dial_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dial = commands.add_parser(
        "dial",
        help="place one outbound call through a running gateway (optionally wait for its end)",
        description="Place one outbound call with POST /calls on a running gateway and print "
        "its id and state. With --wait, follow it to its end: exit 0 when it was answered "
        "(completed) or reached voicemail, 1 when it ended busy, no-answer, failed or "
        "canceled, 2 when the gateway refused the request or could not be reached, 130 on "
        "Ctrl-C (which hangs the call up).",
    )
    dial.add_argument("--agent", required=True, help="agent that talks on the call")
    dial.add_argument("--to", required=True, metavar="NUMBER", help="number to call, E.164")
    _add_api_arguments(dial)
    dial.add_argument(
        "--var", action="append", type=_variable, default=[], metavar="NAME=VALUE",
        help="a call variable for the agent's text; repeat for more (default: none)",
    )
    dial.add_argument("--callback-url", metavar="URL",
                      help="URL the gateway posts the call's state changes to (default: none)")
    dial.add_argument("--wait", action="store_true",
                      help="follow the call until it ends and print how it ended")
    dial.add_argument("--poll-s", type=_positive(float), default=1.0, metavar="S",
                      help="seconds between state checks with --wait (default %(default)s)")
    dial.add_argument("--json", action="store_true",
                      help="print the call as JSON instead of one line of text")


def _add_campaign_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    campaign = commands.add_parser(
        "campaign",
        help="call every number of a CSV file: paced, in calling hours, with retries, resumable",
        description="Call each row of a CSV file (a `to` column, an optional `timezone` "
        "column; every other column is a call variable) through a running gateway. Every row "
        "is checked before the first call. Calls are paced, start only inside each row's "
        "local calling window, and busy/no-answer calls are retried. Progress is kept in a "
        "state file: stopped and run again with the same command, the campaign resumes and "
        "calls no one twice. Exit 0 when every row is done, 1 when some row's outcome is "
        "unknown (see the results), 2 on bad input or a refusal by the gateway, 130 when "
        "stopped (run again to resume).",
    )
    campaign.add_argument("numbers", type=Path, metavar="NUMBERS.csv", help="the numbers file")
    campaign.add_argument("--agent", required=True, help="agent that talks on the calls")
    _add_api_arguments(campaign)
    campaign.add_argument("--calls-per-minute", type=_positive(float), default=10.0,
                          metavar="N", help="calls started per minute, evenly spaced "
                          "(default %(default)s)")
    campaign.add_argument("--max-concurrent", type=_positive(int), default=5, metavar="N",
                          help="calls in progress at once (default %(default)s)")
    campaign.add_argument("--window", type=_window, default="09:00-21:00", metavar="HH:MM-HH:MM",
                          help="local hours a call may start in (default %(default)s)")
    campaign.add_argument("--default-timezone", type=_time_zone, metavar="ZONE",
                          help="IANA time zone of rows with no `timezone` (default: none, "
                          "such rows are errors)")
    campaign.add_argument("--retries", type=_not_negative, default=2, metavar="N",
                          help="extra attempts after busy or no-answer (default %(default)s)")
    campaign.add_argument("--retry-backoff-s", type=_positive(float), default=600.0,
                          metavar="S", help="wait before the first retry, doubling for each "
                          "next one (default %(default)s)")
    campaign.add_argument("--retry-failed", action="store_true",
                          help="retry failed calls too (not by default: failed usually means "
                          "a bad number)")
    campaign.add_argument("--do-not-call", type=Path, metavar="FILE",
                          help="numbers never to call, one a line, # comments (default: none)")
    campaign.add_argument("--state", type=Path, metavar="FILE",
                          help="state file (default: NUMBERS with a .sqlite suffix)")
    campaign.add_argument("--results", type=Path, metavar="FILE",
                          help="results CSV (default: NUMBERS with a .results.csv suffix)")
    campaign.add_argument("--skip-invalid", action="store_true",
                          help="call the valid rows and report the invalid ones (default: "
                          "any invalid row stops the campaign before a call)")
    campaign.add_argument("--stop-outside-window", action="store_true",
                          help="end the run instead of sleeping until a calling window opens "
                          "(run again later to call the rest)")
    campaign.add_argument("--check", action="store_true",
                          help="check the files and say what would be called; call no one")
    campaign.add_argument("--poll-s", type=_positive(float), default=2.0, metavar="S",
                          help="seconds between state checks of a call (default %(default)s)")


def _api_target(args: argparse.Namespace, settings: object) -> tuple[str, str | None]:
    """The gateway URL and token: flags, then GATEWAY_URL / API_TOKEN (environment, then the
    gateway's own settings when they have the token), then the local default."""
    import os

    url = args.gateway or os.environ.get("GATEWAY_URL") or DEFAULT_GATEWAY_URL
    token = args.token or os.environ.get("API_TOKEN")
    if not token:
        found = getattr(settings, "api_token", None)
        if found is not None and hasattr(found, "get_secret_value"):
            found = found.get_secret_value()
        token = found if isinstance(found, str) and found else None
    return url, token


def _dial(args: argparse.Namespace, target: tuple[str, str | None]) -> int:
    try:
        return asyncio.run(_dial_async(args, *target))
    except KeyboardInterrupt:  # before the call was placed (or its answer came)
        print("gateway dial: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _dial_async(args: argparse.Namespace, url: str, token: str | None) -> int:
    import json

    from gateway.outbound.client import (
        ApiError,
        DeliveryUnknown,
        GatewayClient,
        NotSent,
        PlaceRequest,
    )

    def show(call: CallRecord) -> None:
        if args.json:  # the API's own call object (its `recording` is jsonl/wav/txt)
            print(json.dumps(call.raw or _call_json(call)))
            return
        extra = [f"duration={call.duration_s:g}s"] if call.duration_s is not None else []
        extra += [f"{k}={v}" for k, v in (("end_reason", call.end_reason),
                                         ("answered_by", call.answered_by),
                                         ("recording", call.recording)) if v]
        print(" ".join([call.id, call.state, *extra]), flush=True)

    request = PlaceRequest(
        agent=args.agent, to=args.to, from_=args.from_, carrier=args.carrier,
        variables=dict(args.var), callback_url=args.callback_url,
    )
    async with GatewayClient(url, token) as client:
        try:
            call = await client.place(request)
        except ApiError as exc:
            hint = " (give --token or set API_TOKEN)" if exc.status == 401 else ""
            print(f"gateway dial: refused: {exc}{hint}", file=sys.stderr)
            return EXIT_ERROR
        except (NotSent, DeliveryUnknown, ValueError) as exc:
            print(f"gateway dial: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if not args.wait:
            show(call)
            return 0
        print(f"{call.id} {call.state}", file=sys.stderr, flush=True)
        try:
            while not call.terminal:
                await asyncio.sleep(args.poll_s)
                try:
                    latest = await client.get(call.id)
                except ApiError as exc:
                    if exc.status in (401, 403, 404):
                        print(f"gateway dial: {call.id}: {exc}", file=sys.stderr)
                        return EXIT_ERROR
                    print(f"gateway dial: {call.id}: {exc}; trying again", file=sys.stderr)
                    continue
                except (NotSent, DeliveryUnknown, ValueError) as exc:
                    print(f"gateway dial: {call.id}: {exc}; trying again", file=sys.stderr)
                    continue
                if latest.state != call.state and not latest.terminal:
                    print(f"{latest.id} {latest.state}", file=sys.stderr, flush=True)
                call = latest
        except asyncio.CancelledError:  # Ctrl-C: hang the call up rather than leave it going
            try:
                await client.hangup(call.id)
                print(f"gateway dial: interrupted; hung up {call.id}", file=sys.stderr)
            except Exception as exc:
                print(f"gateway dial: interrupted; could not hang up {call.id}: {exc}",
                      file=sys.stderr)
            return EXIT_INTERRUPTED
        show(call)
        return 0 if call.state in ("completed", "voicemail") else EXIT_NOT_ANSWERED


def _call_json(call: CallRecord) -> dict[str, object]:
    """A `CallRecord` built by hand (no API object): its fields under the API's names."""
    from dataclasses import asdict

    data = asdict(call)
    data.pop("raw", None)
    data["from"] = data.pop("from_")
    return data


def _campaign(args: argparse.Namespace, target: tuple[str, str | None]) -> int:
    from gateway.outbound.campaign_rules import (
        InputError,
        RetryPolicy,
        load_do_not_call,
        load_numbers,
    )

    numbers_path: Path = args.numbers
    if not numbers_path.is_file():
        print(f"gateway campaign: {numbers_path}: no such file", file=sys.stderr)
        return EXIT_ERROR
    try:
        numbers = load_numbers(numbers_path, default_timezone=args.default_timezone)
        do_not_call = load_do_not_call(args.do_not_call) if args.do_not_call else frozenset()
    except InputError as exc:
        print(f"gateway campaign: cannot use the input, nothing was called:\n{exc}",
              file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"gateway campaign: {exc}", file=sys.stderr)
        return EXIT_ERROR
    problems = numbers.problems
    if problems:
        listing = "\n".join(str(p) for p in problems)
        bad = sum(1 for row in numbers.rows if row.problems)
        if not args.skip_invalid:
            print(f"gateway campaign: {bad} invalid row(s), nothing was called (fix them, or "
                  f"pass --skip-invalid to call the others):\n{listing}", file=sys.stderr)
            return EXIT_ERROR
        print(f"gateway campaign: skipping {bad} invalid row(s):\n{listing}", file=sys.stderr)
    valid = [row for row in numbers.rows if not row.problems]
    blocked = sum(1 for row in valid if row.to in do_not_call)
    if args.check:
        print(f"{len(valid) - blocked} row(s) to call, {blocked} on the do-not-call list, "
              f"{len(numbers.rows) - len(valid)} invalid")
        return 0
    retry_states = {"busy", "no-answer"} | ({"failed"} if args.retry_failed else set())
    from gateway.outbound.campaign import CampaignSettings

    settings = CampaignSettings(
        agent=args.agent, from_=args.from_, carrier=args.carrier,
        calls_per_minute=args.calls_per_minute, max_concurrent=args.max_concurrent,
        window=args.window, default_timezone=args.default_timezone,
        retry=RetryPolicy(args.retries, args.retry_backoff_s, frozenset(retry_states)),
        do_not_call=do_not_call, poll_interval_s=args.poll_s,
        stop_outside_window=args.stop_outside_window,
    )
    state = args.state or numbers_path.with_suffix(".sqlite")
    results = args.results or numbers_path.with_suffix(".results.csv")
    try:
        return asyncio.run(
            _campaign_async(numbers, settings, state, state.exists(), results, *target)
        )
    except KeyboardInterrupt:  # outside the engine's run: nothing half-done to report
        print("gateway campaign: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _campaign_async(
    numbers: NumbersFile,
    settings: CampaignSettings,
    state: Path,
    resuming: bool,
    results: Path,
    url: str,
    token: str | None,
) -> int:
    import signal

    from gateway.outbound.campaign import (
        CampaignAborted,
        CampaignEngine,
        SystemClock,
        TerminalProgress,
        summary_line,
    )
    from gateway.outbound.campaign_store import CampaignStore, StateFileError
    from gateway.outbound.client import GatewayClient

    clock = SystemClock()
    try:
        store = CampaignStore.open(state, numbers, now=clock.now())
    except StateFileError as exc:
        print(f"gateway campaign: {exc}", file=sys.stderr)
        return EXIT_ERROR
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None and hasattr(signal, "SIGTERM"):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # a kill stops it like Ctrl-C
    progress = TerminalProgress(sys.stderr)
    code = 0
    try:
        async with GatewayClient(url, token) as client:
            engine = CampaignEngine(store, settings, client, clock, progress)
            if resuming:
                progress.note(f"resuming {state}: {summary_line(engine.status())}")
            try:
                status = await engine.run()
                code = 1 if status.outcomes.get("unknown") else 0
            except CampaignAborted as exc:
                progress.close()
                hint = " (give --token or set API_TOKEN)" if "token" in str(exc) else ""
                print(f"gateway campaign: stopped: {exc}{hint}; run the same command again "
                      "to resume", file=sys.stderr)
                code = EXIT_ERROR
            except asyncio.CancelledError:
                progress.close()
                print(f"gateway campaign: stopped; calls in progress go on. Run the same "
                      f"command again to resume ({state})", file=sys.stderr)
                code = EXIT_INTERRUPTED
            progress.close()
            status = engine.status()
            pending_as = "skipped-window" if engine.stopped_outside_window else "pending"
            store.write_results(results, pending_as=pending_as)
            print(f"{summary_line(status)}; results in {results}")
    finally:
        store.close()
        if hasattr(signal, "SIGTERM"):
            loop.remove_signal_handler(signal.SIGTERM)
    return code
