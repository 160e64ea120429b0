"""The ftrack query language: tokenizer, parser and syntax tree.

    select name, status.name from Task
      where status.name is "In Progress" and (parent.name like "sh0%" or priority.sort > 2)
      order by name descending, id offset 0 limit 500

This module only understands the text; :mod:`reviewd.devserver.sql` gives it meaning
against a schema.  Errors name the offending token and its character position, because
a query is usually built by string formatting in a plugin and the position is what lets
its author find the mistake.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from reviewd.devserver.errors import ApiError

COMPARISONS = {
    "is",
    "is_not",
    "in",
    "not_in",
    "like",
    "not_like",
    "after",
    "before",
    "has",
    "any",
    ">",
    "<",
    ">=",
    "<=",
    "=",
    "!=",
}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>>=|<=|!=|>|<|=)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<word>[^\s()<>=!,"']+)
  | (?P<bad>.)
    """,
    re.VERBOSE,
)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


class QueryParseError(ApiError):
    """An expression that is not valid query language; names token and position."""

    def __init__(self, message: str, expression: str, position: int) -> None:
        super().__init__("ParseError", f"{message} at position {position} in query {expression!r}")
        self.position = position
        self.expression = expression


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


@dataclass
class Condition:
    path: list[str]
    operator: str
    value: Any  # Literal value, list of literals, Query (sub-query) or criteria node
    position: int = 0


@dataclass
class BoolOp:
    operator: str  # "and" | "or"
    items: list[Any]


@dataclass
class Not:
    item: Any


@dataclass
class Query:
    entity_type: str
    projections: list[list[str]] | None = None  # None: the type's default projections
    where: Any = None
    order: list[tuple[list[str], bool]] = field(default_factory=list)  # (path, descending)
    offset: int = 0
    limit: int | None = None
    position: int = 0


def tokenize(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "bad":
            raise QueryParseError(f"unexpected character {match.group()!r}", text, match.start())
        assert kind is not None, "every alternative of _TOKEN is a named group"
        tokens.append(Token(kind, match.group(), match.start()))
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # -------------------------------------------------------------- helpers
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.token
        return token.kind == "word" and token.text.lower() in words

    def fail(self, expected: str, token: Token | None = None) -> QueryParseError:
        token = token or self.token
        found = "end of query" if token.kind == "end" else repr(token.text)
        return QueryParseError(f"expected {expected} but found {found}", self.text, token.position)

    def expect_keyword(self, word: str) -> Token:
        if not self.keyword(word):
            raise self.fail(f"'{word}'")
        return self.advance()

    def expect(self, kind: str, description: str) -> Token:
        if self.token.kind != kind:
            raise self.fail(description)
        return self.advance()

    def path(self) -> list[str]:
        token = self.token
        if token.kind != "word":
            raise self.fail("an attribute name")
        parts = token.text.split(".")
        if not all(_IDENTIFIER.match(part) for part in parts):
            raise self.fail("an attribute name")
        self.advance()
        return parts

    def integer(self, what: str) -> int:
        token = self.token
        if token.kind != "word" or not token.text.isdigit():
            raise self.fail(f"a whole number for {what}")
        self.advance()
        return int(token.text)

    # -------------------------------------------------------------- grammar
    def query(self, nested: bool = False) -> Query:
        start = self.token.position
        projections = None
        if self.keyword("select"):
            self.advance()
            projections = [self.path()]
            while self.token.kind == "comma":
                self.advance()
                projections.append(self.path())
            self.expect_keyword("from")
        type_token = self.token
        if type_token.kind != "word" or not _IDENTIFIER.match(type_token.text):
            raise self.fail("an entity type name")
        self.advance()
        query = Query(type_token.text, projections, position=start)
        if self.keyword("where"):
            self.advance()
            query.where = self.expression()
        while self.keyword("order", "offset", "limit"):
            word = self.advance().text.lower()
            if word == "order":
                self.expect_keyword("by")
                query.order.append(self.order_item())
                while self.token.kind == "comma":
                    self.advance()
                    query.order.append(self.order_item())
            elif word == "offset":
                query.offset = self.integer("offset")
            else:
                query.limit = self.integer("limit")
        if nested:
            if self.token.kind != "rparen":
                raise self.fail("')' closing the sub-query")
        elif self.token.kind != "end":
            raise self.fail("'where', 'order by', 'offset', 'limit' or the end of the query")
        return query

    def order_item(self) -> tuple[list[str], bool]:
        path = self.path()
        descending = False
        if self.keyword("asc", "ascending"):
            self.advance()
        elif self.keyword("desc", "descending"):
            self.advance()
            descending = True
        return path, descending

    def expression(self) -> Any:
        items = [self.conjunction()]
        while self.keyword("or"):
            self.advance()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("or", items)

    def conjunction(self) -> Any:
        items = [self.negation()]
        while self.keyword("and"):
            self.advance()
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("and", items)

    def negation(self) -> Any:
        if self.keyword("not"):
            self.advance()
            return Not(self.negation())
        if self.token.kind == "lparen":
            self.advance()
            inner = self.expression()
            self.expect("rparen", "')'")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        start = self.token.position
        path = self.path()
        op_token = self.token
        operator = op_token.text.lower()
        if op_token.kind not in ("word", "op") or operator not in COMPARISONS:
            raise self.fail(
                "an operator (is, is_not, in, not_in, like, not_like, >, <, after, before, has, any)"
            )
        self.advance()
        if operator in ("has", "any"):
            self.expect("lparen", f"'(' after '{operator}'")
            criteria = self.expression()
            self.expect("rparen", "')'")
            return Condition(path, operator, criteria, start)
        if operator in ("in", "not_in"):
            self.expect("lparen", f"'(' after '{operator}'")
            if self.keyword("select"):
                value: Any = self.query(nested=True)
            else:
                value = [self.literal()]
                while self.token.kind == "comma":
                    self.advance()
                    value.append(self.literal())
            self.expect("rparen", "')'")
            return Condition(path, operator, value, start)
        return Condition(path, operator, self.literal(), start)

    def literal(self) -> Any:
        token = self.token
        if token.kind == "string":
            self.advance()
            body = token.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        if token.kind != "word":
            raise self.fail("a value")
        self.advance()
        lowered = token.text.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        if lowered in ("none", "null"):
            return None
        if _NUMBER.match(token.text):
            number = float(token.text)
            return int(number) if number.is_integer() and "." not in token.text else number
        return token.text


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str) -> Query:
    return _Parser(text).query()


def parse(text: object) -> Query:
    """Parse *text*; raises :class:`QueryParseError` naming token and position.

    The tree returned is shared through a cache: callers must not mutate it.
    """
    if not isinstance(text, str):
        raise ApiError("ParseError", "The query expression must be a string.")
    if not text.strip():
        raise QueryParseError("expected a query but found end of query", text, 0)
    return _parse_cached(text)
