"""URLs as logged: never a query, fragment or login, which may carry secrets."""

from __future__ import annotations

import pytest

from gateway.ops.url_redaction import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://live.example/ws/Bidi?key=AIza-secret#x", "wss://live.example/ws/Bidi"),
        ("https://user:p@ss@crm.example:8443/hooks?token=t", "https://crm.example:8443/hooks"),
        ("http://[::1]:8080/tools", "http://[::1]:8080/tools"),
        ("ws://127.0.0.1:99999/ws?key=k", "ws://127.0.0.1:99999/ws"),  # bad port: still shown
        ("/v2/tool?sig=abc", "/v2/tool"),  # a relative redirect target
        ("//other.example/x?y", "//other.example/x"),
        ("http://[::1/x?key=k", "<invalid url>"),
    ],
)
def test_only_scheme_host_port_and_path_are_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown
