"""`Carrier.hang_up_answer`: each webhook carrier's document that ends a call at once, saying
nothing (the server sends it to an outbound call it will not connect)."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

from gateway.settings import load_settings
from gateway.telephony.carriers import carriers_from_settings

CARRIERS = carriers_from_settings(load_settings(env_file=None))


@pytest.mark.parametrize("name", ["twilio", "signalwire", "telnyx", "plivo"])
def test_the_xml_carriers_hang_up_with_a_bare_hangup_verb(name: str) -> None:
    answer = CARRIERS[name].hang_up_answer()
    assert answer.content_type == "application/xml"
    assert [verb.tag for verb in ElementTree.fromstring(answer.body)] == ["Hangup"]


def test_vonage_hangs_up_with_an_ncco_that_does_nothing() -> None:
    answer = CARRIERS["vonage"].hang_up_answer()
    assert (answer.content_type, json.loads(answer.body)) == ("application/json", [])
