"""A GraphQL parser for the query language GitHub's clients send.

Covers operations (named or anonymous, with variable definitions), fragments, inline
fragments, aliases, arguments of every literal kind, variables, directives are
rejected. Errors are raised as ``GraphQLSyntaxError`` with GitHub's message shape:
``Parse error on "}" (RCURLY) at [3, 5]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}|&])
  | (?P<float>-?(?:0|[1-9]\d*)(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+))
  | (?P<int>-?(?:0|[1-9]\d*))
  | (?P<string>"(?:[^"\\\n]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)
_PUNCT_NAMES = {
    "{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "]": "RBRACKET",
    ":": "COLON", "=": "EQUALS", "!": "BANG", "$": "VAR_SIGN", "@": "DIR_SIGN", "|": "PIPE", "&": "AMP",
    "...": "ELLIPSIS",
}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class GraphQLSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Token:
    kind: str
    value: str
    line: int
    column: int


@dataclass
class Variable:
    name: str


@dataclass
class EnumValue:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None
    arguments: dict[str, Any]
    selections: list[Any] | None
    line: int
    column: int

    @property
    def response_key(self) -> str:
        return self.alias or self.name


@dataclass
class FragmentSpread:
    name: str
    line: int
    column: int


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[Any]


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: dict[str, tuple[str, Any]]
    selections: list[Any]


@dataclass
class Document:
    operations: list[Operation] = field(default_factory=list)
    fragments: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        column = pos - line_start + 1
        if not match:
            raise GraphQLSyntaxError(f'Parse error on "{text[pos]}" (error) at [{line}, {column}]', line, column)
        kind = match.lastgroup or ""
        value = match.group(0)
        if kind != "ws":
            tokens.append(Token(kind, value, line, column))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = pos + value.rindex("\n") + 1
        pos = match.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def error(self, token: Token | None = None) -> GraphQLSyntaxError:
        token = token or self.current
        if token.kind == "eof":
            return GraphQLSyntaxError(f"Parse error on end of input at [{token.line}, {token.column}]", token.line, token.column)
        label = _PUNCT_NAMES.get(token.value, token.kind.upper() if token.kind != "name" else "IDENTIFIER")
        return GraphQLSyntaxError(
            f'Parse error on "{token.value}" ({label}) at [{token.line}, {token.column}]', token.line, token.column
        )

    def take(self, value: str | None = None, kind: str | None = None) -> Token:
        token = self.current
        if (value is not None and token.value != value) or (kind is not None and token.kind != kind):
            raise self.error()
        self.index += 1
        return token

    def peek(self, value: str) -> bool:
        return self.current.value == value and self.current.kind in ("punct", "spread", "name")

    def document(self) -> Document:
        document = Document()
        if self.current.kind == "eof":
            raise self.error()
        while self.current.kind != "eof":
            if self.peek("{"):
                document.operations.append(Operation("query", None, {}, self.selection_set()))
            elif self.current.kind == "name" and self.current.value in ("query", "mutation", "subscription"):
                document.operations.append(self.operation())
            elif self.current.kind == "name" and self.current.value == "fragment":
                self.take("fragment")
                name = self.take(kind="name").value
                self.take("on")
                type_condition = self.take(kind="name").value
                document.fragments[name] = (type_condition, self.selection_set())
            else:
                raise self.error()
        return document

    def operation(self) -> Operation:
        kind = self.take(kind="name").value
        name = self.take(kind="name").value if self.current.kind == "name" else None
        variables: dict[str, tuple[str, Any]] = {}
        if self.peek("("):
            self.take("(")
            while not self.peek(")"):
                self.take("$")
                var = self.take(kind="name").value
                self.take(":")
                var_type = self.type_reference()
                default = None
                if self.peek("="):
                    self.take("=")
                    default = self.value(const=True)
                variables[var] = (var_type, default)
            self.take(")")
        if self.peek("@"):
            raise self.error()
        return Operation(kind, name, variables, self.selection_set())

    def type_reference(self) -> str:
        if self.peek("["):
            self.take("[")
            inner = self.type_reference()
            self.take("]")
            text = f"[{inner}]"
        else:
            text = self.take(kind="name").value
        if self.peek("!"):
            self.take("!")
            text += "!"
        return text

    def selection_set(self) -> list[Any]:
        self.take("{")
        selections: list[Any] = []
        while not self.peek("}"):
            selections.append(self.selection())
        self.take("}")
        if not selections:
            raise self.error(self.tokens[self.index - 1])
        return selections

    def selection(self) -> Any:
        if self.current.kind == "spread":
            start = self.take()
            if self.current.kind == "name" and self.current.value == "on":
                self.take("on")
                type_condition = self.take(kind="name").value
                return InlineFragment(type_condition, self.selection_set())
            if self.peek("{"):
                return InlineFragment(None, self.selection_set())
            return FragmentSpread(self.take(kind="name").value, start.line, start.column)
        first = self.take(kind="name")
        alias, name = None, first
        if self.peek(":"):
            self.take(":")
            alias, name = first.value, self.take(kind="name")
        arguments: dict[str, Any] = {}
        if self.peek("("):
            self.take("(")
            while not self.peek(")"):
                arg = self.take(kind="name").value
                self.take(":")
                arguments[arg] = self.value()
            self.take(")")
        if self.peek("@"):
            raise self.error()
        selections = self.selection_set() if self.peek("{") else None
        return Field(name.value, alias, arguments, selections, first.line, first.column)

    def value(self, const: bool = False) -> Any:
        token = self.current
        if token.value == "$" and not const:
            self.take("$")
            return Variable(self.take(kind="name").value)
        if token.kind == "int":
            self.index += 1
            return int(token.value)
        if token.kind == "float":
            self.index += 1
            return float(token.value)
        if token.kind == "string":
            self.index += 1
            return _unescape(token.value[1:-1])
        if token.kind == "name":
            self.index += 1
            if token.value in ("true", "false"):
                return token.value == "true"
            if token.value == "null":
                return None
            return EnumValue(token.value)
        if token.value == "[":
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.take("]")
            return items
        if token.value == "{":
            self.take("{")
            obj = {}
            while not self.peek("}"):
                key = self.take(kind="name").value
                self.take(":")
                obj[key] = self.value(const)
            self.take("}")
            return obj
        raise self.error()


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt == "u":
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse(text: str) -> Document:
    return Parser(text).document()
