"""Text analysis for TextField types: the tokenizers and filters CKAN's schema names.

An analyzer turns a value into `(position, term)` tokens. Understood components:
whitespace, standard/classic, keyword and n-gram tokenizers; the word-delimiter
filters (split on punctuation, case changes and letter/digit boundaries, with
catenation), lower-casing, ASCII folding and an English stemmer. The stemmer is
Porter's step 1 (plurals, -ed, -ing, -y), not the full Snowball algorithm: index and
query go through the same one, so "portals" finds "portal" as it does in Solr, while
rarer derivations ("governmental" -> "govern") do not conflate. Synonym and stop-word
filters are no-ops (CKAN ships empty lists).
"""
from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from typing import Callable

Tokens = list[tuple[int, str]]

# Letters that NFKD does not decompose but ASCIIFoldingFilter folds.
_FOLD_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe",
                               "Œ": "OE", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th",
                               "Þ": "TH", "ı": "i", "’": "'"})


def ascii_fold(text: str) -> str:
    text = text.translate(_FOLD_SPECIAL)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- Porter stemmer, step 1 -------------------------------------------------------

def _consonant(word: str, i: int) -> bool:
    c = word[i]
    if c in "aeiou":
        return False
    if c == "y":
        return i == 0 or not _consonant(word, i - 1)
    return True


def _measure(stem: str) -> int:
    pattern = "".join("c" if _consonant(stem, i) else "v" for i in range(len(stem)))
    return len(re.findall(r"v+c+", pattern))


def _has_vowel(stem: str) -> bool:
    return any(not _consonant(stem, i) for i in range(len(stem)))


def _cvc(word: str) -> bool:
    return (len(word) >= 3 and _consonant(word, len(word) - 3) and not _consonant(word, len(word) - 2)
            and _consonant(word, len(word) - 1) and word[-1] not in "wxy")


def english_stem(word: str) -> str:
    """Porter's step 1a-1c on a lower-case word; other words are returned unchanged."""
    if len(word) <= 2 or not word.isalpha() or not word.islower():
        return word
    if word.endswith("sses") or word.endswith("ies"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    trimmed = False
    if word.endswith("eed"):
        if _measure(word[:-3]) > 0:
            word = word[:-1]
    elif word.endswith("ed") and _has_vowel(word[:-2]):
        word, trimmed = word[:-2], True
    elif word.endswith("ing") and _has_vowel(word[:-3]):
        word, trimmed = word[:-3], True
    if trimmed:
        if word.endswith(("at", "bl", "iz")):
            word += "e"
        elif len(word) >= 2 and word[-1] == word[-2] and _consonant(word, len(word) - 1) and word[-1] not in "lsz":
            word = word[:-1]
        elif _measure(word) == 1 and _cvc(word):
            word += "e"
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    return word


# --- word delimiter -----------------------------------------------------------------

_POSSESSIVE = re.compile(r"['’][sS]$")


def _subwords(token: str, split_on_case: bool, split_on_numerics: bool) -> list[str]:
    parts = []
    for chunk in re.findall(r"[^\W_]+", token):
        start = 0
        for i in range(1, len(chunk)):
            prev, cur = chunk[i - 1], chunk[i]
            nxt = chunk[i + 1] if i + 1 < len(chunk) else ""
            boundary = False
            if split_on_numerics and (prev.isdigit() != cur.isdigit()):
                boundary = True
            elif split_on_case and prev.isalpha() and cur.isalpha():
                # "camelCase" -> camel|Case; "XMLParser" -> XML|Parser
                if prev.islower() and cur.isupper():
                    boundary = True
                elif prev.isupper() and cur.isupper() and nxt.islower():
                    boundary = True
            if boundary:
                parts.append(chunk[start:i])
                start = i
        parts.append(chunk[start:])
    return parts


def word_delimiter(options: dict[str, str]) -> Callable[[Tokens], Tokens]:
    def flag(name: str, default: str) -> bool:
        return options.get(name, default) == "1"

    word_parts, number_parts = flag("generateWordParts", "1"), flag("generateNumberParts", "1")
    cat_words, cat_numbers, cat_all = flag("catenateWords", "0"), flag("catenateNumbers", "0"), flag("catenateAll", "0")
    preserve = flag("preserveOriginal", "0")
    split_case, split_numerics = flag("splitOnCaseChange", "1"), flag("splitOnNumerics", "1")
    possessive = flag("stemEnglishPossessive", "1")

    def run(tokens: Tokens) -> Tokens:
        out: Tokens = []
        position = 0
        for _, token in tokens:
            original = token
            if possessive:
                token = _POSSESSIVE.sub("", token)
            parts = _subwords(token, split_case, split_numerics)
            if not parts:
                continue
            if len(parts) == 1 and parts[0] == original:
                out.append((position, original))
                position += 1
                continue
            first = position
            if preserve:
                out.append((first, original))
            run_start, run_kind, run_text, run_len = position, "", "", 0
            runs: list[tuple[int, str, str, int]] = []  # (position, kind, text, parts)
            for part in parts:
                kind = "num" if part.isdigit() else "word"
                if (kind == "word" and word_parts) or (kind == "num" and number_parts):
                    out.append((position, part))
                if kind != run_kind:
                    if run_kind:
                        runs.append((run_start, run_kind, run_text, run_len))
                    run_start, run_kind, run_text, run_len = position, kind, "", 0
                run_text += part
                run_len += 1
                position += 1
            runs.append((run_start, run_kind, run_text, run_len))
            for start, kind, text, length in runs:
                if length > 1 and ((kind == "word" and cat_words) or (kind == "num" and cat_numbers)):
                    out.append((start, text))
            if cat_all and len(parts) > 1:
                out.append((first, "".join(parts)))
        return sorted(out, key=lambda item: item[0])

    return run


# --- analyzers ----------------------------------------------------------------------

def _whitespace(text: str) -> Tokens:
    return list(enumerate(text.split()))


def _standard(text: str) -> Tokens:
    return list(enumerate(re.findall(r"[^\W_]+(?:['’][^\W_]+)*", text)))


def _keyword(text: str) -> Tokens:
    return [(0, text)]


def _ngram(options: dict[str, str]) -> Callable[[str], Tokens]:
    low, high = int(options.get("minGramSize", "1")), int(options.get("maxGramSize", "2"))

    def run(text: str) -> Tokens:
        grams = [text[i:i + n] for i in range(len(text)) for n in range(low, high + 1) if i + n <= len(text)]
        return list(enumerate(grams))
    return run


def _map_terms(function: Callable[[str], str]) -> Callable[[Tokens], Tokens]:
    return lambda tokens: [(position, function(term)) for position, term in tokens]


class Analyzer:
    """A tokenizer and a chain of filters, as declared in a <analyzer> element."""

    def __init__(self, tokenizer: Callable[[str], Tokens], filters: list[Callable[[Tokens], Tokens]],
                 lowercase: bool = False, fold: bool = False):
        self._tokenizer = tokenizer
        self._filters = filters
        self._lowercase = lowercase
        self._fold = fold

    def analyze(self, text: str) -> Tokens:
        tokens = self._tokenizer(text)
        for step in self._filters:
            tokens = step(tokens)
        return [(position, term) for position, term in tokens if term]

    def multiterm(self, text: str) -> str:
        """How Solr normalizes a wildcard, prefix or range term: case and accents only."""
        if self._lowercase:
            text = text.lower()
        if self._fold:
            text = ascii_fold(text)
        return text


KEYWORD_ANALYZER = Analyzer(_keyword, [])


def analyzer_from_xml(element: ET.Element | None) -> Analyzer:
    if element is None:
        return Analyzer(_whitespace, [])
    tokenizer: Callable[[str], Tokens] = _whitespace
    found = element.find("tokenizer")
    if found is not None:
        name = found.get("class", "")
        if "NGram" in name:
            tokenizer = _ngram(dict(found.attrib))
        elif "Keyword" in name:
            tokenizer = _keyword
        elif "Standard" in name or "Classic" in name:
            tokenizer = _standard
    filters: list[Callable[[Tokens], Tokens]] = []
    lowercase = fold = False
    for item in element.findall("filter"):
        name = item.get("class", "")
        if "WordDelimiter" in name:
            filters.append(word_delimiter(dict(item.attrib)))
        elif "LowerCase" in name:
            filters.append(_map_terms(str.lower))
            lowercase = True
        elif "ASCIIFolding" in name:
            filters.append(_map_terms(ascii_fold))
            fold = True
        elif "Snowball" in name or "PorterStem" in name or "EnglishMinimalStem" in name:
            filters.append(_map_terms(english_stem))
    return Analyzer(tokenizer, filters, lowercase=lowercase, fold=fold)
