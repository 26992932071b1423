"""The Solr stand-in, on CKAN's own schema.xml: query parsing, search, updates, HTTP."""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from tests.services import Layout
from tests.solr_standin import Index, Params, Schema, SolrError, SolrStandin
from tests.solr_standin.query import min_should_match

CKAN_SEARCH = {"df": "text", "q.op": "AND", "wt": "json"}
DISMAX = {"defType": "dismax", "tie": "0.1", "mm": "2<-1 5<80%", "qf": "name^4 title^4 tags^2 groups^2 text"}


@pytest.fixture(scope="module")
def schema_path() -> str:
    return str(Layout.from_env().ckan_solr_schema())


@pytest.fixture(scope="module")
def schema(schema_path: str) -> Schema:
    return Schema.from_file(schema_path)


def make_doc(name: str, **fields: Any) -> dict[str, Any]:
    """A document shaped like the ones CKAN indexes."""
    doc_id = fields.pop("id", f"id-{name}")
    doc = {"id": doc_id, "index_id": hashlib.md5(f"{doc_id}default".encode()).hexdigest(), "site_id": "default",
           "name": name, "title": name.replace("-", " ").title(), "entity_type": "package", "type": "site",
           "dataset_type": "site", "state": "active", "capacity": "public", "private": False,
           "metadata_modified": "2024-05-01T10:00:00.123456Z", "metadata_created": "2024-01-01T00:00:00Z"}
    doc.update(fields)
    return doc


@pytest.fixture
def index(schema: Schema) -> Index:
    index = Index(schema)
    index.add([
        make_doc("berlin-open-data", title="Berlin Open Data", notes="Datasets of the city of Berlin",
                 tags=["city", "germany"], num_datasets="120", organization="berlin", site_type="Government"),
        make_doc("data-gov-uk", title="data.gov.uk", notes="Find open government data",
                 tags=["national", "uk"], num_datasets="60000", organization="uk", site_type="Government"),
        make_doc("uni-research-portal", title="University Research Portal", notes="Research data portals",
                 tags=["research"], num_datasets="9", type="extension", dataset_type="extension",
                 site_type="Research", metadata_modified="2023-02-01T00:00:00Z"),
        make_doc("draft-portal", title="Draft portal", state="draft", tags=["city"]),
    ])
    index.commit()
    return index


def search(index: Index, **params: Any) -> dict[str, Any]:
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key.replace("__", "."), str(item)))
    return index.search(Params(pairs))


def names(index: Index, q: str = "*:*", **params: Any) -> list[str]:
    params.setdefault("sort", "name asc")
    params.setdefault("rows", 100)
    answer = search(index, q=q, fl="name", **{**CKAN_SEARCH, **params})
    return [doc["name"] for doc in answer["response"]["docs"]]


# --- the standard query parser --------------------------------------------------------------

def test_field_term_matches_the_whole_string_value(index):
    assert names(index, "name:data-gov-uk") == ["data-gov-uk"]
    assert names(index, "name:data") == []


def test_quoted_value_matches_a_string_field_exactly(index):
    assert names(index, 'name:"berlin-open-data" OR id:"berlin-open-data"') == ["berlin-open-data"]


def test_default_operator_and_requires_every_bare_clause(index):
    assert names(index, "dataset_type:site state:active") == ["berlin-open-data", "data-gov-uk"]


def test_default_operator_or_needs_one_bare_clause(index):
    assert names(index, "name:data-gov-uk name:draft-portal", **{"q.op": "OR"}) == ["data-gov-uk", "draft-portal"]


def test_or_makes_both_neighbours_optional(index):
    assert names(index, "name:data-gov-uk OR name:draft-portal") == ["data-gov-uk", "draft-portal"]


def test_plus_requires_and_minus_excludes(index):
    assert names(index, "+state:active -dataset_type:extension") == ["berlin-open-data", "data-gov-uk"]


def test_not_excludes(index):
    assert names(index, "tags:city NOT state:draft") == ["berlin-open-data"]
    assert names(index, "tags:city AND !state:draft") == ["berlin-open-data"]


def test_field_group_applies_the_field_to_each_term(index):
    assert names(index, "+state:(active OR draft) +tags:city") == ["berlin-open-data", "draft-portal"]


def test_parentheses_group_clauses(index):
    assert names(index, "(name:data-gov-uk OR name:draft-portal) AND state:active") == ["data-gov-uk"]


def test_match_all_and_purely_negative_query(index):
    assert len(names(index, "*:*")) == 4
    assert names(index, "-state:active") == ["draft-portal"]


def test_text_field_matching_ignores_case_and_plural(index):
    assert names(index, "notes:DATASET") == ["berlin-open-data"]
    assert names(index, "text:portal") == ["draft-portal", "uni-research-portal"]


def test_phrase_on_a_text_field_needs_adjacent_words(index):
    assert names(index, 'notes:"open government"') == ["data-gov-uk"]
    assert names(index, 'notes:"government open"') == []


@pytest.mark.parametrize(("query", "expected"), [
    ("num_datasets:[120 TO 9]", ["berlin-open-data", "data-gov-uk", "uni-research-portal"]),
    ("num_datasets:{120 TO 9]", ["data-gov-uk", "uni-research-portal"]),
    ("num_datasets:[120 TO 9}", ["berlin-open-data", "data-gov-uk"]),
    ("num_datasets:[* TO 2]", ["berlin-open-data"]),
    ('name:{"data-gov-uk" TO *]', ["draft-portal", "uni-research-portal"]),
])
def test_ranges_compare_strings_with_inclusive_and_exclusive_ends(index, query, expected):
    # num_datasets is a string under CKAN's schema: "120" < "60000" < "9".
    assert names(index, query) == expected


def test_range_on_a_date_field_takes_date_math(index):
    assert names(index, "metadata_modified:[2024-01-01T00:00:00Z TO NOW]") == [
        "berlin-open-data", "data-gov-uk", "draft-portal"]
    assert names(index, "metadata_modified:[* TO 2024-01-01T00:00:00Z/YEAR-1DAY]") == ["uni-research-portal"]


def test_wildcards_and_field_existence(index):
    assert names(index, "name:data*") == ["data-gov-uk"]
    assert names(index, "name:*-portal") == ["draft-portal", "uni-research-portal"]
    assert names(index, "organization:*") == ["berlin-open-data", "data-gov-uk"]


@pytest.mark.parametrize("query", ["name:(berlin", 'id:{"x" TO', "AND name:x", "name:x AND", "name:x)",
                                   'name:"unclosed', "name:[a b]", "title:^2"])
def test_bad_syntax_is_a_solr_400(index, query):
    with pytest.raises(SolrError) as raised:
        search(index, q=query, **CKAN_SEARCH)
    assert raised.value.code == 400
    assert raised.value.msg.startswith(f"org.apache.solr.search.SyntaxError: Cannot parse '{query}'")


def test_no_default_field_is_an_error_for_bare_terms(index):
    with pytest.raises(SolrError, match="no field name specified"):
        search(index, q="berlin")


# --- dismax ---------------------------------------------------------------------------------

def test_dismax_spreads_words_over_query_fields(index):
    assert names(index, "berlin", **DISMAX) == ["berlin-open-data"]
    assert names(index, "Research portals", **DISMAX) == ["uni-research-portal"]


def test_dismax_treats_lucene_syntax_as_text(index):
    # Not a field query: the words name, draft and portal, any of them, over the qf fields.
    assert names(index, "name:draft-portal", **DISMAX) == ["draft-portal", "uni-research-portal"]
    assert names(index, "berlin (city)", **DISMAX) == ["berlin-open-data"]


def test_dismax_honours_plus_and_minus(index):
    assert names(index, "city -draft", **DISMAX) == ["berlin-open-data"]


def test_dismax_relevance_is_the_default_order(index):
    answer = search(index, q="portal data", fl="name score", rows=10, **{**CKAN_SEARCH, **DISMAX})
    scores = [doc["score"] for doc in answer["response"]["docs"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("optional", "required"), [(1, 1), (2, 2), (3, 2), (5, 4), (6, 4), (10, 8)])
def test_min_should_match_follows_ckans_mm(optional, required):
    assert min_should_match(optional, "2<-1 5<80%") == required


# --- filters, sort, paging, fields, facets ----------------------------------------------------

def test_every_filter_query_is_required(index):
    assert names(index, fq=["+capacity:public dataset_type:site +state:(active)", '+site_id:"default"']) == [
        "berlin-open-data", "data-gov-uk"]


def test_sort_on_several_fields_with_missing_values_last(index):
    assert names(index, sort="organization desc, name asc") == [
        "data-gov-uk", "berlin-open-data", "draft-portal", "uni-research-portal"]
    assert names(index, sort="organization asc, name desc") == [
        "berlin-open-data", "data-gov-uk", "uni-research-portal", "draft-portal"]


@pytest.mark.parametrize(("sort", "message"), [
    ("name up", "Can't determine a Sort Order (asc or desc) in sort spec 'name up', pos=4"),
    ("name", "Can't determine a Sort Order (asc or desc) in sort spec 'name', pos=4"),
    ("id asc, name", "Can't determine a Sort Order (asc or desc) in sort spec 'id asc, name', pos=12"),
    ("tags asc", "can not sort on multivalued field: tags of type: string"),
])
def test_invalid_sort_is_a_400_with_solrs_message(index, sort, message):
    with pytest.raises(SolrError) as raised:
        search(index, q="*:*", sort=sort)
    assert (raised.value.code, raised.value.msg) == (400, message)


def test_rows_and_start_page_through_the_results(index):
    pages = [names(index, rows=2, start=start) for start in (0, 2, 4)]
    assert pages == [["berlin-open-data", "data-gov-uk"], ["draft-portal", "uni-research-portal"], []]


def test_num_found_counts_all_matches_not_the_page(index):
    answer = search(index, q="*:*", rows=1)
    assert answer["response"]["numFound"] == 4
    assert len(answer["response"]["docs"]) == 1


def test_only_stored_fields_are_returned(index):
    doc = search(index, q="name:data-gov-uk")["response"]["docs"][0]
    assert doc["name"] == "data-gov-uk"
    assert "num_datasets" not in doc and "type" not in doc and "text" not in doc  # indexed, not stored
    assert doc["metadata_modified"] == "2024-05-01T10:00:00.123Z"  # millisecond precision
    assert doc["tags"] == ["national", "uk"] and doc["capacity"] == "public"


def test_field_list_selects_fields(index):
    doc = search(index, q="name:data-gov-uk", fl="id,name")["response"]["docs"][0]
    assert doc == {"id": "id-data-gov-uk", "name": "data-gov-uk"}


def test_facets_count_matches_by_count_with_limit_and_mincount(index):
    answer = search(index, q="*:*", rows=0, facet="true", facet__field=["tags", "site_type"],
                    facet__limit=2, facet__mincount=1)
    assert answer["facet_counts"]["facet_fields"] == {"tags": ["city", 2, "germany", 1],
                                                      "site_type": ["Government", 2, "Research", 1]}


def test_facet_limit_minus_one_returns_all_in_index_order(index):
    answer = search(index, q="*:*", rows=0, facet="true", facet__field="tags", facet__limit=-1,
                    facet__mincount=1)
    assert answer["facet_counts"]["facet_fields"]["tags"] == [
        "city", 2, "germany", 1, "national", 1, "research", 1, "uk", 1]


def test_no_facet_counts_when_faceting_is_off(index):
    assert "facet_counts" not in search(index, q="*:*", facet="false", facet__field="tags")


# --- updates --------------------------------------------------------------------------------

def test_adds_are_invisible_until_commit(schema):
    index = Index(schema)
    index.add([make_doc("a")])
    assert names(index) == []
    index.commit()
    assert names(index) == ["a"]


def test_a_document_replaces_the_one_with_the_same_unique_key(index):
    index.add([make_doc("berlin-open-data", title="Berlin (new)")])
    index.commit()
    answer = search(index, q="name:berlin-open-data")
    assert [doc["title"] for doc in answer["response"]["docs"]] == ["Berlin (new)"]


def test_delete_by_query_as_ckan_sends_it(index):
    index.delete_by_query('+entity_type:package AND +(id:"id-data-gov-uk" OR name:"id-data-gov-uk") '
                          'AND +site_id:"default"')
    index.commit()
    assert "data-gov-uk" not in names(index)


@pytest.mark.parametrize(("fields", "message"), [
    ({"organization": ["a", "b"]}, "multiple values encountered for non multiValued field organization: [a, b]"),
    ({"metadata_modified": "yesterday"}, "Invalid Date String:'yesterday'"),
    ({"site_id": None}, "missing required field: site_id"),
])
def test_invalid_documents_are_rejected(schema, fields, message):
    with pytest.raises(SolrError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Index(schema).add([make_doc("x", **fields)])


def test_a_persisted_index_survives_a_restart(schema, tmp_path):
    data = str(tmp_path / "index.jsonl")
    first = Index(schema, data)
    first.add([make_doc("a"), make_doc("b"), make_doc("c")])
    first.commit()
    first.delete_by_query("name:b")
    first.commit()
    assert names(Index(schema, data)) == ["a", "c"]


@settings(max_examples=30, deadline=None)
@given(ids=st.sets(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                                                  exclude_characters='"\\'), min_size=1, max_size=12),
                   min_size=1, max_size=25),
       page=st.integers(min_value=1, max_value=7))
def test_paging_by_id_range_visits_every_document_once(schema, ids, page):
    index = Index(schema)
    index.add([make_doc(f"n{i}", id=doc_id) for i, doc_id in enumerate(sorted(ids))])
    index.commit()
    seen, last = [], None
    while True:
        fq = [] if last is None else [f'id:{{"{last}" TO *]']
        docs = search(index, q="*:*", fq=fq, sort="id asc", rows=page, fl="id", **CKAN_SEARCH)["response"]["docs"]
        if not docs:
            break
        seen += [doc["id"] for doc in docs]
        last = docs[-1]["id"]
    assert seen == sorted(ids)


# --- HTTP -----------------------------------------------------------------------------------

@pytest.fixture
def server(schema_path):
    with SolrStandin(schema_path) as running:
        yield running


def http(url: str, data: bytes | None = None, content_type: str | None = None,
         method: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(url: str, body: Any) -> tuple[int, bytes]:
    return http(url, json.dumps(body).encode(), "application/json; charset=utf-8")


def test_update_and_select_as_pysolr_sends_them(server):
    status, _ = post_json(f"{server.url}/update/?commit=true", [make_doc("a"), make_doc("b")])
    assert status == 200
    delete = b'<delete><query>+entity_type:package AND +(id:"id-a" OR name:"id-a") AND +site_id:"default"</query></delete>'
    assert http(f"{server.url}/update/?commit=true", delete, "text/xml; charset=utf-8")[0] == 200
    query = urllib.parse.urlencode({"q": "*:*", "fq": '+site_id:"default"', "wt": "json", "fl": "name"})
    status, body = http(f"{server.url}/select/?{query}")
    assert status == 200
    assert json.loads(body)["response"] == {"numFound": 1, "start": 0, "numFoundExact": True,
                                            "docs": [{"name": "b"}]}


def test_select_by_post_form_answers_like_get(server):
    post_json(f"{server.url}/update/?commit=true", [make_doc("a"), make_doc("b")])
    params = urllib.parse.urlencode([("q", "name:a OR name:b"), ("fq", "+state:active"), ("rows", "1"),
                                     ("sort", "name desc"), ("wt", "json"), ("fl", "name")])
    by_get = json.loads(http(f"{server.url}/select/?{params}")[1])["response"]
    by_post = json.loads(http(f"{server.url}/select/", params.encode(),
                              "application/x-www-form-urlencoded; charset=utf-8")[1])["response"]
    assert by_get == by_post == {"numFound": 2, "start": 0, "numFoundExact": True, "docs": [{"name": "b"}]}


def test_schema_is_served_as_ckan_reads_it(server, schema_path):
    with open(schema_path, "rb") as handle:
        expected = handle.read()
    assert http(f"{server.url}/schema?wt=schema.xml") == (200, expected)
    assert http(f"{server.url}/admin/file/?file=schema.xml") == (200, expected)


def test_errors_are_solr_json_that_pysolr_reads(server):
    status, body = http(f"{server.url}/select/?q=name:(a&wt=json")
    assert status == 400
    assert json.loads(body)["error"]["msg"].startswith("org.apache.solr.search.SyntaxError: Cannot parse")
    status, body = http(f"{server.url}/update/?commit=true", b"[{\"id\": 1", "application/json")
    assert status == 400 and json.loads(body)["error"]["code"] == 400


def test_unknown_core_is_not_found(server):
    assert http(server.url.replace("/ckan", "/other") + "/select/?q=*:*")[0] == 404


def test_injected_faults_fail_the_next_requests_then_stop(server):
    base = server.url.rsplit("/solr/", 1)[0]
    post_json(f"{base}/standin/faults", {"handler": "select", "status": 503, "count": 1})
    assert http(f"{server.url}/select/?q=*:*")[0] == 503
    assert http(f"{server.url}/select/?q=*:*")[0] == 200
    stats = json.loads(http(f"{base}/standin/stats")[1])
    assert stats["requests"]["select"] == 2
