"""The customer's request in pasted text: quoted verbatim, never invented."""

from __future__ import annotations

from agent.triage.extract import request_sentence, verbatim


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
