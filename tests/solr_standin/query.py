"""Solr queries: the standard (Lucene) query parser, the dismax parser, and the query tree.

The standard parser follows Lucene's classic grammar and its clause rules:
`field:term`, `field:"phrase"`, `+`/`-`/`!`, `AND`/`OR`/`NOT`/`&&`/`||`, parentheses,
`field:(a OR b)`, `*:*`, `field:*`, wildcards (`ab*`, `a?c`), `/regex/`, ranges
(`[a TO b]`, `{a TO *]`, quoted endpoints), boosts (`^2`) and fuzzy/slop (`~`, ignored).
With the default operator AND, as CKAN sends it, a bare clause is required unless an OR
joins it. The dismax parser escapes everything but quotes, `+`, `-` and the boolean
words, spreads each word over the `qf` fields and applies `mm`.

A query node answers `score(doc)`: None when the document does not match, else a
score (term frequency times boost, summed; dismax takes the best field plus `tie`
times the others). Scores only order results when sorting by `score`.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from .document import Document, convert, to_bool
from .dates import parse_date
from .errors import SolrError, syntax_error
from .schema import Field, Schema

MUST, SHOULD, MUST_NOT = "MUST", "SHOULD", "MUST_NOT"


# --- the query tree --------------------------------------------------------------------

class Query:
    boost: float = 1.0

    def score(self, doc: Document) -> float | None:
        raise NotImplementedError


class MatchAll(Query):
    def score(self, doc):
        return self.boost

    def __repr__(self):
        return "*:*"


class MatchNone(Query):
    def score(self, doc):
        return None

    def __repr__(self):
        return "MatchNone"


class ExactQuery(Query):
    """A field whose values are compared whole: string, bool, numbers and dates."""

    def __init__(self, field: Field, value: Any):
        self.field, self.value = field, value

    def score(self, doc):
        hits = sum(1 for v in doc.field_values(self.field.name) if v == self.value)
        return hits * self.boost if hits else None

    def __repr__(self):
        return f"{self.field.name}:{self.value!r}"


class TextTermQuery(Query):
    """Analyzed terms of a text field: each position group must match (AND) or any (OR)."""

    def __init__(self, field: Field, groups: list[list[str]], require_all: bool):
        self.field, self.groups, self.require_all = field, groups, require_all

    def score(self, doc):
        terms = doc.terms(self.field)
        matched = sum(1 for group in self.groups if any(t in terms for t in group))
        if matched == 0 or (self.require_all and matched < len(self.groups)):
            return None
        return matched * self.boost

    def __repr__(self):
        return f"{self.field.name}:{self.groups!r}"


class PhraseQuery(Query):
    """Consecutive analyzed terms within one value of a text field."""

    def __init__(self, field: Field, tokens: list[tuple[int, str]]):
        self.field = field
        first = tokens[0][0]
        self.tokens = [(position - first, term) for position, term in tokens]

    def score(self, doc):
        hits = 0
        for token_set in doc.tokens(self.field):
            starts = {position for position, term in token_set if term == self.tokens[0][1]}
            for start in starts:
                if all((start + offset, term) in token_set for offset, term in self.tokens[1:]):
                    hits += 1
        return hits * self.boost if hits else None

    def __repr__(self):
        return f'{self.field.name}:"{" ".join(t for _, t in self.tokens)}"'


class ExistsQuery(Query):
    def __init__(self, field: Field):
        self.field = field

    def score(self, doc):
        return self.boost if doc.field_values(self.field.name) else None

    def __repr__(self):
        return f"{self.field.name}:*"


class PatternQuery(Query):
    """Wildcard or regular-expression match against the indexed terms of a field."""

    def __init__(self, field: Field, regex: re.Pattern[str], shown: str):
        self.field, self.regex, self.shown = field, regex, shown

    def score(self, doc):
        return self.boost if any(self.regex.fullmatch(t) for t in doc.terms(self.field)) else None

    def __repr__(self):
        return f"{self.field.name}:{self.shown}"


class RangeQuery(Query):
    def __init__(self, field: Field, low: Any, high: Any, include_low: bool, include_high: bool):
        self.field, self.low, self.high = field, low, high
        self.include_low, self.include_high = include_low, include_high

    def _within(self, value: Any) -> bool:
        if self.low is not None and (value < self.low or (value == self.low and not self.include_low)):
            return False
        if self.high is not None and (value > self.high or (value == self.high and not self.include_high)):
            return False
        return True

    def score(self, doc):
        if self.field.kind == "text":
            values: Iterable[Any] = doc.terms(self.field)
        elif self.field.kind == "bool":
            values = ("true" if v else "false" for v in doc.field_values(self.field.name))
        else:
            values = doc.field_values(self.field.name)
        return self.boost if any(self._within(v) for v in values) else None

    def __repr__(self):
        return (f"{self.field.name}:{'[' if self.include_low else '{'}{self.low} TO {self.high}"
                f"{']' if self.include_high else '}'}")


class BooleanQuery(Query):
    def __init__(self, clauses: list[tuple[str, Query]], min_should_match: int = 0):
        self.clauses, self.min_should_match = clauses, min_should_match

    def score(self, doc):
        total = 0.0
        should_hits = 0
        has_positive = False
        for occur, query in self.clauses:
            result = query.score(doc)
            if occur == MUST:
                has_positive = True
                if result is None:
                    return None
                total += result
            elif occur == MUST_NOT:
                if result is not None:
                    return None
            else:
                has_positive = True
                if result is not None:
                    should_hits += 1
                    total += result
        has_must = any(occur == MUST for occur, _ in self.clauses)
        if self.min_should_match and should_hits < self.min_should_match:
            return None
        if not has_must and has_positive and should_hits == 0:
            return None
        if not has_positive:
            # A purely negative query matches everything else, as Solr makes it do.
            return self.boost
        return total * self.boost

    def __repr__(self):
        signs = {MUST: "+", SHOULD: "", MUST_NOT: "-"}
        inner = " ".join(f"{signs[o]}{q!r}" for o, q in self.clauses)
        suffix = f"~{self.min_should_match}" if self.min_should_match else ""
        return f"({inner}){suffix}"


class DisMaxQuery(Query):
    def __init__(self, disjuncts: list[Query], tie: float):
        self.disjuncts, self.tie = disjuncts, tie

    def score(self, doc):
        scores = [s for s in (q.score(doc) for q in self.disjuncts) if s is not None]
        if not scores:
            return None
        best = max(scores)
        return (best + self.tie * (sum(scores) - best)) * self.boost

    def __repr__(self):
        return "(" + " | ".join(repr(q) for q in self.disjuncts) + ")"


# --- lexer -----------------------------------------------------------------------------

_SPECIAL = set(' \t\n\r\u3000+-!():^[]"{}~*?\\/')
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SINGLE_CHAR_TOKENS = {"(": "LPAREN", ")": "RPAREN", ":": "COLON", "+": "PLUS", "-": "MINUS", "!": "NOT"}


class Token:
    __slots__ = ("kind", "text", "column", "extra")

    def __init__(self, kind: str, text: str, column: int, extra: Any = None):
        self.kind, self.text, self.column, self.extra = kind, text, column, extra

    def __repr__(self):
        return f"Token({self.kind}, {self.text!r})"


def _lex(query: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(query)

    def error(detail_column: int, found: str) -> SolrError:
        return syntax_error(query, f'Encountered "{found}" at line 1, column {detail_column}.')

    while i < n:
        c = query[i]
        if c in " \t\n\r\u3000":
            i += 1
            continue
        start = i
        if c in _SINGLE_CHAR_TOKENS:
            tokens.append(Token(_SINGLE_CHAR_TOKENS[c], c, start))
            i += 1
        elif query.startswith(("&&", "||"), i):
            tokens.append(Token("AND" if c == "&" else "OR", query[i:i + 2], start))
            i += 2
        elif c in "^~":
            i += 1
            number = _NUMBER.match(query, i)
            if number:
                i = number.end()
            elif c == "^":
                raise error(i, "<EOF>" if i >= n else query[i])
            tokens.append(Token("CARAT" if c == "^" else "TILDE", query[start:i], start))
        elif c == '"':
            i += 1
            chars = []
            while i < n and query[i] != '"':
                if query[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(query[i])
                i += 1
            if i >= n:
                raise syntax_error(query, f"Lexical error at line 1, column {n + 1}.  Encountered: <EOF> after : "
                                          f"\"{query[start:]}\"")
            i += 1
            tokens.append(Token("QUOTED", "".join(chars), start))
        elif c in "[{":
            i, token = _lex_range(query, i, error)
            tokens.append(token)
        elif c == "/":
            end = i + 1
            while end < n and query[end] != "/":
                end += 2 if query[end] == "\\" else 1
            if end >= n:
                raise syntax_error(query, f"Lexical error at line 1, column {n + 1}.  Encountered: <EOF>")
            tokens.append(Token("REGEX", query[i + 1:end], start))
            i = end + 1
        elif c in "]}":
            raise error(i + 1, c)
        else:
            chars: list[tuple[str, bool]] = []  # (character, escaped)
            while i < n:
                c = query[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise syntax_error(query, "Term can not end with escape character.")
                    chars.append((query[i + 1], True))
                    i += 2
                    continue
                if c in _SPECIAL and not (c in "*?" or (c in "+-" and chars)):
                    break
                chars.append((c, False))
                i += 1
            text = "".join(ch for ch, _ in chars)
            if not any(esc for _, esc in chars) and text in ("AND", "OR", "NOT"):
                tokens.append(Token(text, text, start))
            else:
                tokens.append(Token("TERM", text, start, chars))
    return tokens


def _lex_range(query: str, i: int, error) -> tuple[int, Token]:
    start, n = i, len(query)
    include_low = query[i] == "["
    i += 1
    parts: list[tuple[str, bool]] = []  # (text, quoted)
    while True:
        while i < n and query[i] in " \t\n\r":
            i += 1
        if i >= n:
            raise error(n + 1, "<EOF>")
        c = query[i]
        if c in "]}":
            if len(parts) != 3 or parts[1] != ("TO", False):
                raise error(i + 1, c)
            token = Token("RANGE", query[start:i + 1], start,
                          (parts[0], parts[2], include_low, c == "]"))
            return i + 1, token
        if len(parts) == 3:
            raise error(i + 1, query[i])
        if c == '"':
            j = i + 1
            chars = []
            while j < n and query[j] != '"':
                if query[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(query[j])
                j += 1
            if j >= n:
                raise error(n + 1, "<EOF>")
            parts.append(("".join(chars), True))
            i = j + 1
        else:
            j = i
            while j < n and query[j] not in " \t\n\r]}":
                j += 1
            text = query[i:j].replace("\\", "") if "\\" in query[i:j] else query[i:j]
            parts.append((text, False))
            i = j


# --- building leaf queries ------------------------------------------------------------

def _group_by_position(tokens: list[tuple[int, str]]) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for position, term in tokens:
        groups.setdefault(position, []).append(term)
    return [groups[p] for p in sorted(groups)]


def _wildcard_regex(chars: list[tuple[str, bool]], normalize) -> re.Pattern[str]:
    pattern = []
    for ch, escaped in chars:
        if not escaped and ch == "*":
            pattern.append(".*")
        elif not escaped and ch == "?":
            pattern.append(".")
        else:
            pattern.append(re.escape(normalize(ch)))
    return re.compile("".join(pattern), re.S)


def _typed(field: Field, text: str) -> Any:
    """A query term converted to the field's type; Solr's error for a bad number or date."""
    if field.kind == "date":
        return parse_date(text)
    if field.kind in ("int", "float"):
        try:
            return convert(field, text)
        except SolrError:
            raise SolrError(400, f"Invalid Number: {text}") from None
    if field.kind == "bool":
        return to_bool(text)
    return text


def term_query(field: Field, text: str, require_all: bool) -> Query | None:
    if field.kind == "text":
        tokens = field.type.query_analyzer.analyze(text)
        if not tokens:
            return None
        return TextTermQuery(field, _group_by_position(tokens), require_all)
    return ExactQuery(field, _typed(field, text))


def phrase_query(field: Field, text: str, require_all: bool) -> Query | None:
    if field.kind != "text":
        return ExactQuery(field, _typed(field, text))
    tokens = field.type.query_analyzer.analyze(text)
    if not tokens:
        return None
    if len({p for p, _ in tokens}) == 1:
        return TextTermQuery(field, _group_by_position(tokens), require_all)
    # Keep one term per position (the first) for the positional match.
    seen: dict[int, str] = {}
    for position, term in tokens:
        seen.setdefault(position, term)
    return PhraseQuery(field, sorted(seen.items()))


def range_query(field: Field, low: tuple[str, bool], high: tuple[str, bool],
                include_low: bool, include_high: bool) -> Query:
    def endpoint(part: tuple[str, bool]) -> Any:
        text, quoted = part
        if text == "*" and not quoted:
            return None
        if field.kind == "text":
            return field.type.query_analyzer.multiterm(text)
        if field.kind == "bool":
            return "true" if to_bool(text) else "false"
        return _typed(field, text)
    return RangeQuery(field, endpoint(low), endpoint(high), include_low, include_high)


# --- the standard parser ----------------------------------------------------------------

CONJ_NONE, CONJ_AND, CONJ_OR = 0, 1, 2
MOD_NONE, MOD_REQ, MOD_NOT = 0, 1, 2


class StandardParser:
    """Lucene's classic query syntax. `alias_fields` sends unfielded terms to a dismax."""

    def __init__(self, schema: Schema, default_field: str | None = None, default_and: bool = False,
                 alias_fields: list[tuple[str, float]] | None = None, tie: float = 0.0):
        self.schema = schema
        self.default_field = default_field
        self.default_and = default_and
        self.alias_fields = alias_fields
        self.tie = tie

    def parse(self, query: str) -> Query | None:
        """The query tree, or None for an empty query (which matches nothing)."""
        self._text = query
        self._tokens = _lex(query)
        self._pos = 0
        if not self._tokens:
            return None
        result = self._query(None)
        if self._pos < len(self._tokens):
            self._fail(self._tokens[self._pos])
        return result

    # token helpers
    def _peek(self, offset: int = 0) -> Token | None:
        index = self._pos + offset
        return self._tokens[index] if index < len(self._tokens) else None

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            self._fail(None)
        self._pos += 1
        return token

    def _fail(self, token: Token | None):
        if token is None:
            raise syntax_error(self._text, f'Encountered "<EOF>" at line 1, column {len(self._text)}.')
        raise syntax_error(self._text, f'Encountered " <{token.kind}> "{token.text} "" at line 1, '
                                       f'column {token.column + 1}.')

    # grammar
    def _query(self, field: str | None) -> Query | None:
        clauses: list[tuple[str, Query]] = []
        first_query: Query | None = None
        count = 0
        while True:
            token = self._peek()
            if token is None or token.kind == "RPAREN":
                break
            conj = CONJ_NONE
            if count:
                if token.kind == "AND":
                    conj = CONJ_AND
                    self._pos += 1
                elif token.kind == "OR":
                    conj = CONJ_OR
                    self._pos += 1
            mods = MOD_NONE
            token = self._peek()
            if token is not None and token.kind == "PLUS":
                mods = MOD_REQ
                self._pos += 1
            elif token is not None and token.kind in ("MINUS", "NOT"):
                mods = MOD_NOT
                self._pos += 1
            query = self._clause(field)
            if count == 0 and mods == MOD_NONE:
                first_query = query
            self._add_clause(clauses, conj, mods, query)
            count += 1
        if count == 0:
            self._fail(self._peek())
        if count == 1 and first_query is not None:
            return first_query
        if not clauses:
            return None
        return BooleanQuery(clauses)

    def _add_clause(self, clauses: list[tuple[str, Query]], conj: int, mods: int, query: Query | None) -> None:
        if clauses and conj == CONJ_AND and clauses[-1][0] != MUST_NOT:
            clauses[-1] = (MUST, clauses[-1][1])
        if clauses and self.default_and and conj == CONJ_OR and clauses[-1][0] != MUST_NOT:
            clauses[-1] = (SHOULD, clauses[-1][1])
        if query is None:
            return
        prohibited = mods == MOD_NOT
        if self.default_and:
            required = not prohibited and conj != CONJ_OR
        else:
            required = mods == MOD_REQ or (conj == CONJ_AND and not prohibited)
        if prohibited:
            clauses.append((MUST_NOT, query))
        else:
            clauses.append((MUST if required else SHOULD, query))

    def _clause(self, field: str | None) -> Query | None:
        token = self._peek()
        after = self._peek(1)
        if token is not None and token.kind == "TERM" and after is not None and after.kind == "COLON":
            field_name = token.text
            self._pos += 2
            if field_name == "*":
                following = self._peek()
                if following is not None and following.kind == "TERM" and following.text == "*":
                    self._pos += 1
                    return self._boosted(MatchAll())
            field = field_name
        token = self._peek()
        if token is not None and token.kind == "LPAREN":
            self._pos += 1
            inner = self._query(field)
            closing = self._next()
            if closing.kind != "RPAREN":
                self._fail(closing)
            return self._boosted(inner)
        return self._term(field)

    def _boosted(self, query: Query | None) -> Query | None:
        while True:
            token = self._peek()
            if token is None or token.kind not in ("CARAT", "TILDE"):
                return query
            self._pos += 1
            if token.kind == "CARAT" and query is not None:
                query.boost = float(token.text[1:])

    def _term(self, field: str | None) -> Query | None:
        token = self._next()
        if token.kind == "TERM":
            query = self._leaf(field, lambda f: self._term_for(f, token))
        elif token.kind == "QUOTED":
            query = self._leaf(field, lambda f: phrase_query(f, token.text, self.default_and))
        elif token.kind == "RANGE":
            low, high, include_low, include_high = token.extra
            query = self._leaf(field, lambda f: range_query(f, low, high, include_low, include_high))
        elif token.kind == "REGEX":
            query = self._leaf(field, lambda f: PatternQuery(
                f, re.compile(token.text), f"/{token.text}/"))
        else:
            self._fail(token)
        return self._boosted(query)

    def _term_for(self, field: Field, token: Token) -> Query | None:
        chars = token.extra
        wildcard = any(ch in "*?" and not esc for ch, esc in chars)
        if not wildcard:
            return term_query(field, token.text, self.default_and)
        if token.text == "*":
            return ExistsQuery(field)
        normalize = field.type.query_analyzer.multiterm if field.kind == "text" else (lambda s: s)
        return PatternQuery(field, _wildcard_regex(chars, normalize), token.text)

    def _leaf(self, field: str | None, build) -> Query | None:
        if field is None and self.alias_fields is not None:
            disjuncts = []
            for name, boost in self.alias_fields:
                query = build(self.schema.require_field(name))
                if query is not None:
                    query.boost = boost
                    disjuncts.append(query)
            return DisMaxQuery(disjuncts, self.tie) if disjuncts else None
        if field is None:
            field = self.default_field
            if not field:
                raise SolrError(400, "no field name specified in query and no default specified via 'df' param")
        return build(self.schema.require_field(field))


# --- dismax ---------------------------------------------------------------------------

def min_should_match(optional: int, spec: str) -> int:
    """How many of `optional` clauses must match for an `mm` spec (Solr's rules)."""
    spec = re.sub(r"\s*<\s*", "<", spec.strip())
    if "<" in spec:
        result = optional
        for part in spec.split():
            upper, _, rest = part.partition("<")
            if optional <= int(upper):
                return result
            result = min_should_match(optional, rest)
        return result
    result = optional
    if spec.endswith("%"):
        calc = result * int(spec[:-1]) / 100
        result = result + int(calc) if calc < 0 else int(calc)
    else:
        calc = int(spec)
        result = result + calc if calc < 0 else calc
    return optional if optional < result else max(result, 0)


_DISMAX_ESCAPE = re.compile(r'([\\!():^\[\]/{}~*?])')


def parse_field_boosts(spec: str) -> list[tuple[str, float]]:
    fields = []
    for part in spec.replace(",", " ").split():
        name, _, boost = part.partition("^")
        fields.append((name, float(boost) if boost else 1.0))
    return fields


def parse_dismax(schema: Schema, text: str, params: dict[str, str]) -> Query | None:
    """The dismax parser: free text over `qf`, with `+`, `-`, quotes and `mm`."""
    if text.count('"') % 2:
        text = text.replace('"', "")
    text = _DISMAX_ESCAPE.sub(r"\\\1", text)
    text = re.sub(r"(?:\s+(?:AND|OR|NOT|[+-]))+\s*$", "", " " + text).strip()
    text = re.sub(r"^(?:(?:AND|OR)\s+)+", "", text)
    query_fields = parse_field_boosts(params.get("qf") or params.get("df") or "text")
    parser = StandardParser(schema, alias_fields=query_fields, default_and=False,
                            tie=float(params.get("tie", "0.0")))
    query = parser.parse(text)
    if isinstance(query, BooleanQuery):
        optional = sum(1 for occur, _ in query.clauses if occur == SHOULD)
        spec = params.get("mm") or ("100%" if params.get("q.op", "OR").upper() == "AND" else "0%")
        query.min_should_match = min_should_match(optional, spec)
    return query


def parse_query(schema: Schema, text: str, params: dict[str, str], def_type: str = "lucene") -> Query | None:
    """Parse `text` with the named query parser and the request's parameters."""
    if re.match(r"\s*\{!", text):
        raise SolrError(400, "local params are not supported by the Solr stand-in")
    default_and = params.get("q.op", "OR").upper() == "AND"
    if def_type in ("lucene", "standard", "", None):
        return StandardParser(schema, params.get("df"), default_and).parse(text)
    if def_type == "dismax":
        return parse_dismax(schema, text, params)
    if def_type == "edismax":
        fields = parse_field_boosts(params.get("qf") or params.get("df") or "text")
        return StandardParser(schema, None, default_and, alias_fields=fields,
                              tie=float(params.get("tie", "0.0"))).parse(text)
    raise SolrError(400, f"Unknown query parser '{def_type}'")

