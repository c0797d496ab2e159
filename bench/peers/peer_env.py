"""The peers' own virtual environments: made on first use, from pinned requirements.

    .venv/bin/python bench/peers/peer_env.py pipecat            # make (or update) the venv
    .venv/bin/python bench/peers/peer_env.py pipecat --print    # the commands, run nothing
    .venv/bin/python bench/peers/peer_env.py pipecat --check    # exit 1 if it is not ready

A peer is another project's bridge run by the benchmarks beside ours (see README.md here).
Its dependencies must not meet the gateway's, so each peer has a venv of its own under
bench/peers/ (gitignored), made with the Python that runs the bench (`-m venv`, so the same
interpreter version as ours) and filled by pip from bench/peers/requirements-<peer>.txt. The
venv remembers the requirements it was filled from; when they change, the next use installs
again. Standard library only: the bench imports this before any peer exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
STAMP = ".bench-peer-requirements"
"""File in a peer's venv holding the requirements text it was installed from."""


@dataclass(frozen=True)
class Peer:
    name: str
    script: Path
    requirements: Path
    packages: tuple[str, ...]
    """Distributions whose versions the bench reports in its header."""

    @property
    def venv(self) -> Path:
        override = os.environ.get(f"BENCH_{self.name.upper()}_VENV")
        return Path(override) if override else PEERS_DIR / f".venv-{self.name}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


PEERS = {
    "pipecat": Peer(
        name="pipecat",
        script=PEERS_DIR / "pipecat_bridge.py",
        requirements=PEERS_DIR / "requirements-pipecat.txt",
        packages=("pipecat-ai", "google-genai", "fastapi", "uvicorn", "websockets", "soxr"),
    ),
}


def setup_commands(peer: Peer, base_python: str | None = None) -> list[list[str]]:
    """What making the venv runs, in order (needs PyPI)."""
    python = base_python or sys.executable
    return [
        [python, "-m", "venv", str(peer.venv)],
        [str(peer.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(peer.requirements)],
    ]  # fmt: skip


def is_ready(peer: Peer) -> bool:
    """The venv exists and was filled from the current requirements."""
    stamp = peer.venv / STAMP
    try:
        return peer.python.exists() and stamp.read_text() == peer.requirements.read_text()
    except OSError:
        return False


def ensure(peer: Peer) -> Path:
    """The peer's python, making its venv first if it is missing or out of date."""
    if is_ready(peer):
        return peer.python
    print(f"setting up the {peer.name} peer in {peer.venv} (pip, from PyPI) …", file=sys.stderr)
    commands = setup_commands(peer)
    if peer.python.exists():
        commands = commands[1:]  # the venv is there, its packages are not current
    for command in commands:
        done = subprocess.run(command, stdout=sys.stderr, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{peer.name} peer set-up failed ({done.returncode}): {command}")
    (peer.venv / STAMP).write_text(peer.requirements.read_text())
    return peer.python


def versions(peer: Peer) -> str:
    """'pipecat-ai 1.14.0, google-genai …' as installed in the peer's venv."""
    code = (
        "import importlib.metadata as m, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: print(name, 'missing')\n"
    )
    done = subprocess.run(
        [str(peer.python), "-c", code, *peer.packages],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return ", ".join(done.stdout.split("\n")[:-1]) if done.returncode == 0 else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description="make a peer bridge's own venv")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("--print", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the venv is ready")
    args = parser.parse_args()
    peer = PEERS[args.peer]
    if args.print:
        for command in setup_commands(peer):
            print(" ".join(command))
        return
    if args.check:
        ready = is_ready(peer)
        print(f"{peer.name}: {'ready' if ready else 'not set up'} ({peer.venv})")
        sys.exit(0 if ready else 1)
    python = ensure(peer)
    print(f"{peer.name}: {python} ({versions(peer)})")


if __name__ == "__main__":
    main()
