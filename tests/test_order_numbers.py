"""Order numbers as customers write them: read by shape, confirmed against the orders table in one
query, near misses suggested; shapes from the policy, refused when they could not run in linear time."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from agent.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy
from agent.triage.order_numbers import (
    DEFAULT_ORDER_NUMBERS,
    OrderNumbers,
    Shape,
    find_order_ids,
    order_mentions,
    resolve,
    resolve_one,
)
from agent.triage.order_numbers.lookup import one_edit_away, typed
from tests.factories import clean_fixture, order
from tools.fixtures import load_fixture


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
        ("orders 100042/100043 & 100044", ["SO-100042", "SO-100043", "SO-100044"]),
        ("Order number: 100042", ["SO-100042"]),
        ("Order#100042 please", ["SO-100042"]),
        ("SO-100042 again: SO-100042.", ["SO-100042"]),
        ("SO-100042/SO-100043", ["SO-100042", "SO-100043"]),
        # as other ERPs number them
        ("Our ref SO-K7781, your SAP order 4500098761.", ["SO-K7781", "4500098761"]),
        ("Bestellung ORD-2025-1193 und DE/2026/00017", ["ORD-2025-1193", "DE/2026/00017"]),
        ("(see order ORD-2025-1193)", ["ORD-2025-1193"]),
        # the digit zero for the letter O, and the letter O for a zero
        ("where is S0-10042?", ["SO-10042"]),
        ("0RD-2025-1193 and SO-1OO42", ["ORD-2025-1193", "SO-10042"]),
    ],
)
def test_order_numbers_in_the_shapes_people_write(text, expected):
    assert find_order_ids(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "PO 100042 is late",  # a purchase order, not a sales order
        "please ship 100042 units",  # a bare number of no shape is ambiguous
        "invoice 100042",
        "ALSO-100042 and SO-100042-B",  # inside other codes
        "an order of 1000 units",
        "order\n\n\n\n\n\n\n\n\n100042",  # too far from its keyword
        "call 555-0100 or 45000987612",  # eleven digits is no ten-digit number
        "no numbers at all",
    ],
)
def test_what_is_not_an_order_number(text):
    assert find_order_ids(text) == []


def test_a_mention_keeps_the_spellings_it_may_stand_for():
    [mention] = order_mentions("status of SO1 please")
    assert mention.candidates == ("SO-1", "SO1")
    [bare] = order_mentions("ref 4500098761")
    assert bare.report is False  # a ten-digit number may be a PO: never reported as an unknown order
    assert typed(" so-100042 ").candidates[:3] == ("so-100042", "SO-100042", "SO100042")
    assert typed("x" * 5000).candidates == ("x" * 40,)


def test_one_edit_away_is_bounded_and_digit_only():
    near = one_edit_away("SO-10042")
    assert "SO-100042" in near and "SO-1042" in near and "SO-01042" in near and "SO-10043" in near
    assert "SO-10042" not in near and all(v.startswith("SO-") for v in near)
    assert len(one_edit_away("SO-" + "1" * 12)) < 300


@pytest.fixture
def book(session):
    load_fixture(
        session,
        clean_fixture(
            *(
                order(oid)
                for oid in (
                    "SO-100042",
                    "SO-100043",
                    "SO1",
                    "SO-K7781",
                    "4500098761",
                    "ORD-2025-1193",
                    "DE/2026/00017",
                    "SO-10042",
                )
            )
        ),
        case_id="order-numbers",
    )
    session.commit()
    return session


def _count_queries(session):
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_candidates_are_confirmed_in_one_query(book):
    email = (
        "Hello, SO-K7781 and SAP 4500098761 are late, also ORD-2025-1193 and DE/2026/00017; "
        "PO 4500000001 is ours. What about S0-10042 and SO1? Call 0123456789."
    )
    queries = _count_queries(book)
    res = resolve(book, order_mentions(email))
    assert res.found == ["SO-K7781", "4500098761", "ORD-2025-1193", "DE/2026/00017", "SO-10042", "SO1"]
    assert res.not_found == []  # 4500000001 and 0123456789 have a silent shape
    assert res.read_as == {"S0-10042": "SO-10042"}
    assert len(queries) == 1 and "IN" in queries[0]


def test_near_misses_are_suggested_in_one_more_indexed_query(book):
    queries = _count_queries(book)
    res = resolve(book, order_mentions("Is SO-100442 late? And ORD-2025-1139, SO-999999?"))
    assert res.found == [] and res.not_found == ["SO-100442", "ORD-2025-1139", "SO-999999"]
    assert res.near_misses == {"SO-100442": ["SO-100042", "SO-10042"], "ORD-2025-1139": ["ORD-2025-1193"]}
    assert res.notes() == [
        "SO-100442 not found; did you mean SO-100042 or SO-10042?",
        "ORD-2025-1139 not found; did you mean ORD-2025-1193?",
        "SO-999999 not found",
    ]
    assert len(queries) == 2 and all("order_id IN" in q for q in queries)


def test_one_typed_id_resolves_to_its_spelling_or_its_near_misses(book):
    assert resolve_one(book, "so 100042") == ("SO-100042", [])
    assert resolve_one(book, "S0-K7781") == ("SO-K7781", [])
    assert resolve_one(book, "SO-100047") == (None, ["SO-100042", "SO-100043"])
    assert resolve_one(book, "nothing") == (None, [])
    # read whole or not at all: junk around a number is no other spelling of it
    for junk in ("SO-100042'--", "SO-100042;", "SO-100042 SO-100043", "(SO-100042)", "SO-100042--"):
        assert resolve_one(book, junk)[0] is None, junk
        assert typed(junk).candidates == tuple(dict.fromkeys((junk, junk.upper()))), junk


def test_shapes_come_from_the_policy_and_unsafe_ones_are_refused():
    assert load_policy().order_numbers == DEFAULT_ORDER_NUMBERS  # the shipped file says the defaults
    custom = OrderNumbers(shapes=(Shape(pattern="AUF[0-9]{6}"),), keywords=("auftrag",), number_prefix="AUF")
    assert find_order_ids("Auftrag 123456 und AUF654321, SO-100042", custom) == ["AUF123456", "AUF654321"]
    good = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    for bad, why in [
        (r"(SO)-\\1", "invalid escape sequence"),
        (r"SO-(?=[0-9])[0-9]+", "invalid perl operator: (?="),
        (r"[0-9]*", "matches an empty token"),
        (r"(a{1,100}){1,100}", "invalid repetition size"),
        (r"[A-Z0-9]{1,500}[A-Z0-9]{1,500}", "too complex"),
    ]:
        broken = good.replace('{pattern: "SO-[0-9]{1,12}"}', '{pattern: "' + bad + '"}')
        assert broken != good
        with pytest.raises(PolicyError) as err:
            parse_policy(broken, source="p.yaml")
        assert why in str(err.value) and "order_numbers.shapes" in str(err.value), str(err.value)


def _adversarial(size: int) -> dict[str, str]:
    """Texts of ``size`` characters built to make a backtracking reader slow."""

    def fill(unit: str, head: str = "", tail: str = "") -> str:
        body = unit * ((size - len(head) - len(tail)) // len(unit) + 1)
        return (head + body)[: size - len(tail)] + tail

    return {
        "spaces after order": fill(" ", "order", "x"),
        "digits": fill("1"),
        "repeated order": fill("order "),
        "order no no no": fill("no. ", "order "),
        "nested punctuation": fill("(#:[-/#]) ", "order "),
        "long separators": fill("-", "SO", "1"),
        "slashes": fill("DE/2026/"),
        "a list that never ends": fill(", 1000", "orders 1000"),
        "mixed O and 0": fill("S0-1OO4O ", "order "),
        "many numbers": fill("SO-100042 SO-1OO43 order 100044, "),
    }


def _timed(texts: list[str]) -> float:
    started = time.process_time()
    for text in texts:
        order_mentions(text)
    return time.process_time() - started


@pytest.mark.parametrize("name", list(_adversarial(100)))
def test_reading_is_linear_on_adversarial_text(name):
    """100 KB read in one go costs about what ten 10 KB texts cost read one after another (the
    linear baseline, measured in this test on the same machine); a backtracking reader costs 10x
    (square) to 100x (cube) as much. Runs interleaved, best of three; the bound (4x) is generous."""
    large, chunk = _adversarial(100_000)[name], _adversarial(10_000)[name]
    assert len(large) == 100_000 and len(chunk) == 10_000
    one, ten = float("inf"), float("inf")
    for _ in range(3):
        one = min(one, _timed([large]))
        ten = min(ten, _timed([chunk] * 10))
    assert one / ten < 4, f"{name}: 100 KB in one text took {one / ten:.1f}x ten 10 KB texts"


def test_a_long_text_reads_a_bounded_number_of_numbers(book):
    from agent.triage.order_numbers import MAX_MENTIONS

    text = " ".join(f"SO-{n}" for n in range(100_000, 120_000))
    mentions = order_mentions(text)
    assert len(mentions) == MAX_MENTIONS
    queries = _count_queries(book)
    res = resolve(book, mentions)
    # bounded by the caps (1,000 numbers, near misses for 20), not by the text: IN lists of 500 ids
    assert "SO-100042" in res.found and len(queries) <= 16
    assert all("orders.order_id IN" in q for q in queries)
