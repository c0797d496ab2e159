"""The operator console (CONSOLE_TOKEN): live calls, call history, agents, the day at a glance.

`add_console` (gateway.console.routes) wires it into the app; the server imports this
package only when CONSOLE_TOKEN is set, so an idle gateway without it loads none of it.
Modules, one job each: `auth` (token and session cookie), `live` (calls in progress and their
event stream), `history` (the index of recordings, local and in the object store), `detail`
(one recorded call), `agents_view`, `glance` (metrics and hourly counts), `routes`.
"""

from gateway.console.routes import CONSOLE, Console, add_console

__all__ = ["CONSOLE", "Console", "add_console"]
