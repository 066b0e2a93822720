"""The replies benchmark's pieces (helpers.bench.replies, .paced_upstream): the paced
upstream answers in the pieces it was asked for, and the client reads them as it should."""

from __future__ import annotations

import httpx
import pytest

from helpers.bench.paced_upstream import create_paced_app, reply_text
from helpers.bench.replies import _stream
from tests.conftest import ThreadedGateway


@pytest.mark.parametrize("dense", [True, False])
def test_reply_text_is_whole_sentences_with_the_identifiers(dense: bool) -> None:
    text = reply_text(102_400, dense)
    assert 90_000 < len(text) <= 102_400 and text.endswith(". ")
    cards = text.count("4111 1111 1111 1111")
    assert cards == text.count("219-09-9998") and (cards > 500 if dense else 5 <= cards <= 10)


def test_the_client_times_a_paced_stream_and_reads_it_whole() -> None:
    with ThreadedGateway(create_paced_app(400, 4, 0.002)) as upstream, httpx.Client() as http:
        first, at_65, total, text = _stream(http, upstream.url + "/v1/chat/completions", 65)
    assert text == reply_text(400)
    # 65 characters in 4-character chunks 2 ms apart: the 17th chunk, 32 ms after the first.
    assert first < at_65 < total and at_65 - first >= 30
