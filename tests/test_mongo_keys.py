"""The MongoDB key codec: reversible, injective, invisible on clean keys."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckancrawl.pipelines.mongo_keys import (
    MongoKeysPipeline,
    decode_key,
    decode_keys,
    encode_key,
    encode_keys,
)

# Characters the codec cares about, mixed with arbitrary text, so that generated keys
# often contain escapes, look-alike escapes ("%2E") and leading "$".
TRICKY = st.sampled_from(["%", ".", "$", "\x00", "2", "E", "e", "4", "5", "0", "%2E", "%25", "%24", "%00"])
keys = st.lists(TRICKY | st.characters(), max_size=12).map("".join) | st.text()
clean_keys = st.text(min_size=1).filter(
    lambda k: not k.startswith("$") and not any(c in k for c in ".%\x00")
)


def documents_with(keys, text):
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False)
        | text
    )
    return st.dictionaries(
        keys,
        st.recursive(
            scalars,
            lambda children: st.lists(children, max_size=4)
            | st.dictionaries(keys, children, max_size=4),
            max_leaves=25,
        ),
        max_size=6,
    )


documents = documents_with(keys, st.text())
# BSON strings are UTF-8: lone surrogates cannot be stored whatever the keys look like.
utf8 = st.characters(codec="utf-8")
storable_documents = documents_with(
    st.lists(TRICKY | utf8, max_size=12).map("".join), st.text(utf8)
)

def walk_keys(obj: Any):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from walk_keys(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from walk_keys(v)


def is_mongo_safe(key: str) -> bool:
    return bool(key) and not key.startswith("$") and "." not in key and "\x00" not in key


@given(keys)
def test_decoding_an_encoded_key_gives_it_back(key):
    assert decode_key(encode_key(key)) == key


@given(keys)
def test_encoded_keys_are_accepted_by_mongodb_rules(key):
    assert is_mongo_safe(encode_key(key))


@given(st.lists(keys, unique=True, max_size=30))
def test_different_keys_never_share_an_encoding(key_list):
    encoded = [encode_key(k) for k in key_list]
    assert len(set(encoded)) == len(encoded)


@pytest.mark.parametrize(
    "a, b",
    [
        ("a.b", "a%2Eb"),
        ("a%2Eb", "a%252Eb"),
        ("$a", "%24a"),
        ("a\x00b", "a%00b"),
        ("", "%"),
        ("", "%25"),
        ("%", "%25"),
        ("$", "%24"),
        ("a$", "a%24"),
        (".", "%2E"),
        ("%2e", "."),
    ],
)
def test_lookalike_keys_stay_apart(a, b):
    assert encode_key(a) != encode_key(b)
    assert decode_key(encode_key(a)) == a
    assert decode_key(encode_key(b)) == b


@given(clean_keys)
def test_clean_keys_are_unchanged(key):
    assert encode_key(key) == key
    assert decode_key(key) == key


@pytest.mark.parametrize(
    "key, encoded",
    [
        ("a.b", "a%2Eb"),
        ("$ref", "%24ref"),
        ("a$b", "a$b"),
        ("a\x00b", "a%00b"),
        ("100%", "100%25"),
        ("", "%"),
        ("$.%", "%24%2E%25"),
        ("名前.ja", "名前%2Eja"),
    ],
)
def test_examples_of_encodings(key, encoded):
    assert encode_key(key) == encoded


def test_very_long_and_non_ascii_keys_are_unchanged():
    for key in ["k" * 10_000, "Ελληνικά", "名前", "emoji🙂key", "é" * 10_000]:
        assert encode_key(key) == key


@pytest.mark.parametrize("bogus", ["", "a.b", "$a", "a\x00", "%41", "%2e", "a%24", "%%25", "%2"])
def test_decoding_rejects_what_encoding_cannot_produce(bogus):
    with pytest.raises(ValueError):
        decode_key(bogus)


@given(documents)
def test_documents_round_trip_at_any_depth(doc):
    encoded = encode_keys(doc)
    assert all(is_mongo_safe(k) for k in walk_keys(encoded))
    assert decode_keys(encoded) == doc


def test_dicts_inside_lists_are_encoded():
    doc = {"resources": [{"a.b": 1, "nested": [[{"$x": {"": 2}}]]}], "t": ({"c.d": 3},)}
    assert encode_keys(doc) == {
        "resources": [{"a%2Eb": 1, "nested": [[{"%24x": {"%": 2}}]]}],
        "t": ({"c%2Ed": 3},),
    }


@given(doc=storable_documents)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mongodb_stores_and_returns_encoded_documents(mongo_db, doc):
    collection = mongo_db["nasty_keys"]
    inserted = collection.insert_one({"doc": encode_keys(doc)}).inserted_id
    stored = collection.find_one({"_id": inserted})
    assert decode_keys(stored["doc"]) == doc


def test_mongodb_stores_a_document_with_every_kind_of_nasty_key(mongo_db):
    doc = {
        "a.b": 1, "a%2Eb": 2, "$where": 3, "": 4, "%": 5, "nul\x00key": 6,
        "list": [{"x.y": {"$gt": 1}}, [{"": None}]], "k" * 10_000: "long", "名.前": 7,
    }
    collection = mongo_db["nasty_keys"]
    inserted = collection.insert_one(encode_keys(doc)).inserted_id
    stored = collection.find_one({"_id": inserted}, {"_id": False})
    assert decode_keys(stored) == doc
    assert collection.count_documents({"a%2Eb": 1}) == 1


@dataclass
class Snapshot:
    name: str
    status_show: dict[str, Any] = field(default_factory=dict)
    extras: list[Any] = field(default_factory=list)


def test_pipeline_encodes_the_dicts_inside_an_item():
    item = Snapshot("x", {"ckan.version": "2.11", "$a": {"b.c": 1}}, [{"d.e": 2}, "plain"])
    assert MongoKeysPipeline().process_item(item) is item
    assert item.name == "x"
    assert item.status_show == {"ckan%2Eversion": "2.11", "%24a": {"b%2Ec": 1}}
    assert item.extras == [{"d%2Ee": 2}, "plain"]


def test_pipeline_encodes_the_top_level_keys_of_a_dict_item():
    item = {"a.b": {"$c": 1}, "ok": 2}
    assert MongoKeysPipeline().process_item(item) is item
    assert item == {"a%2Eb": {"%24c": 1}, "ok": 2}
