"""A fake Asterisk Manager Interface on loopback: banner, Login, CoreShowChannels over a fixed
channel list, Setvar / Redirect / Hangup recorded (and answered Success, or Error when told),
Logoff; or silent after the banner (for timeouts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.telephony.asterisk_ami import AmiMessage, AmiParser

USERNAME = "gateway"
SECRET = "ami-secret-do-not-log"
CALLER = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "1700000000.1"}


def bridged_pair(channel: str, uniqueid: str, bridge_id: str = "bridge-1") -> list[AmiMessage]:
    """The caller's PJSIP channel and our WebSocket channel, bridged (our Linkedid is the
    caller's Uniqueid), plus an unrelated call in another bridge."""
    return [
        {"Channel": "PJSIP/other-00000007", "Uniqueid": "1700000000.7", "BridgeId": "bridge-9",
         "Linkedid": "1700000000.7"},
        {**CALLER, "Linkedid": CALLER["Uniqueid"], "BridgeId": bridge_id,
         "Application": "Dial", "ApplicationData": "WebSocket/gateway/c(ulaw)"},
        {"Channel": channel, "Uniqueid": uniqueid, "Linkedid": CALLER["Uniqueid"],
         "BridgeId": bridge_id, "Application": "AppDial", "ApplicationData": "(Outgoing Line)"},
        {"Channel": "PJSIP/other-00000008", "Uniqueid": "1700000000.8", "BridgeId": "bridge-9",
         "Linkedid": "1700000000.7"},
    ]  # fmt: skip


@dataclass
class FakeAmi:
    channels: Sequence[Mapping[str, str]] = ()
    refuse: Mapping[str, str] = field(default_factory=dict)
    """Action → the Message of the Error it gets."""
    silent: bool = False
    """Send the banner, then read and never answer."""
    actions: list[AmiMessage] = field(default_factory=list)
    """Every action received after a good login (Login and Logoff included), in order."""
    logins: list[AmiMessage] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_action(self, name: str) -> AmiMessage:
        """The first action called `name`, once it has arrived."""
        async with self._changed:
            await self._changed.wait_for(lambda: any(a["Action"] == name for a in self.actions))
        return next(a for a in self.actions if a["Action"] == name)

    def names(self) -> list[str]:
        return [a["Action"] for a in self.actions]

    async def _record(self, message: AmiMessage) -> None:
        async with self._changed:
            self.actions.append(message)
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = AmiParser(banner=False)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        logged_in = False
        try:
            while data := await reader.read(4096):
                for message in parser.feed(data):
                    if self.silent:
                        continue
                    logged_in = await self._answer(writer, message, logged_in)
                    if message.get("Action") == "Logoff":
                        return
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(
        self, writer: asyncio.StreamWriter, message: AmiMessage, logged_in: bool
    ) -> bool:
        action = message.get("Action", "")
        action_id = message.get("ActionID", "")

        def send(fields: Mapping[str, str]) -> None:
            lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
            # Split across writes, with an unrelated event first: the client must reassemble.
            data = f"Event: PeerStatus\r\nPrivilege: system,all\r\n\r\n{lines}\r\n".encode()
            if writer.is_closing():
                return
            for start in range(0, len(data), 7):
                writer.write(data[start : start + 7])

        if action == "Login":
            self.logins.append(message)
            good = message.get("Username") == USERNAME and message.get("Secret") == SECRET
            if not good:
                send({"Response": "Error", "ActionID": action_id,
                      "Message": "Authentication failed"})  # fmt: skip
                return False
            await self._record(message)
            send({"Response": "Success", "ActionID": action_id,
                  "Message": "Authentication accepted"})  # fmt: skip
            return True
        if not logged_in:
            send({"Response": "Error", "ActionID": action_id,
                  "Message": "Authentication Required"})  # fmt: skip
            return False
        await self._record(message)
        if action in self.refuse:
            send({"Response": "Error", "ActionID": action_id, "Message": self.refuse[action]})
        elif action == "Logoff":
            pass  # Asterisk answers `Response: Goodbye` and closes; the client does not wait
        elif action == "CoreShowChannels":
            send({"Response": "Success", "ActionID": action_id, "EventList": "start",
                  "Message": "Channels will follow"})  # fmt: skip
            for channel in self.channels:
                send({"Event": "CoreShowChannel", "ActionID": action_id, **channel})
            send({"Event": "CoreShowChannelsComplete", "ActionID": action_id,
                  "EventList": "Complete", "ListItems": str(len(self.channels))})  # fmt: skip
        else:
            send({"Response": "Success", "ActionID": action_id, "Message": f"{action} done"})
        return True
