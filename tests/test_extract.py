"""Order numbers and the customer's request in pasted text: regular expressions, no model."""

from __future__ import annotations

import pytest

from agent.triage.extract import find_order_ids, order_mentions, request_sentence, resolve_mentions, verbatim


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What is blocking SO-100042?", ["SO-100042"]),
        (
            "so-100042 and SO 100043, also SO100044 / SO#100045",
            ["SO-100042", "SO-100043", "SO-100044", "SO-100045"],
        ),
        ("Re: order 100042", ["SO-100042"]),
        ("our order no. 100042 and order #100043", ["SO-100042", "SO-100043"]),
        ("orders 100042, 100043 and 100044 are late", ["SO-100042", "SO-100043", "SO-100044"]),
        ("Order number: 100042", ["SO-100042"]),
        ("SO-100042 again: SO-100042", ["SO-100042"]),
    ],
)
def test_order_numbers_in_their_common_spellings(text, expected):
    assert find_order_ids(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "PO 100042 is late",  # a purchase order, not a sales order
        "please ship 100042 units",  # a bare number is ambiguous
        "invoice 100042",
        "ALSO-100042 and SO-100042-B",  # inside other codes
        "an order of 1000 units",
        "no numbers at all",
    ],
)
def test_what_is_not_an_order_number(text):
    assert find_order_ids(text) == []


def test_a_mention_keeps_the_spellings_it_may_stand_for():
    [mention] = order_mentions("status of SO1 please")
    assert mention.candidates == ("SO-1", "SO1")
    known = {"SO1", "SO-100042"}
    found, missing = resolve_mentions(order_mentions("SO1, SO-100042 and SO-999999"), known.__contains__)
    assert found == ["SO1", "SO-100042"] and missing == ["SO-999999"]


def test_the_request_sentence_is_quoted_verbatim():
    email = (
        "Hi team,\n\nThanks for the quick reply. Could you ship what you have of SO-100042 now "
        "and the rest later? Best regards, Ana"
    )
    assert request_sentence(email) == "Could you ship what you have of SO-100042 now and the rest later?"
    assert request_sentence("Hello. Kind regards.") is None


def test_verbatim_refuses_what_the_text_does_not_say():
    text = "Please   split the order.\nThanks"
    assert verbatim("please split the order.", text)
    assert verbatim('"Please split the order."', text)
    assert not verbatim("Please cancel the order.", text)
    assert not verbatim("", text) and not verbatim(None, text)
