"""Subscription and target expressions (``topic=ftrack.update and not data.x=1``).

Matching runs for every event against every subscription, on the client and in the
embedded server, so an expression is parsed once (LRU-cached by its text) and compiled
into nested closures: matching is then a handful of dictionary lookups and string
comparisons with no tree walking and no per-call allocation.  The module is pure (no
I/O, no imports from the rest of reviewd) because the server imports it too.

Grammar (PROTOCOL.md section 4)::

    expression := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" expression ")" | condition
    condition  := key OP value          OP: = != > < >= <=
    key        := letters, digits, "_" and "." (a dotted path into the candidate)
    value      := bare word of letters, digits and -_,./*@+  |  "quoted" | 'quoted'

Keywords are case-insensitive.  A key missing from the candidate makes its condition
false whatever the operator.  Values stay strings; ``=`` with a value ending in ``*``
matches when the text before the ``*`` occurs anywhere in the candidate's value.

Decisions where ftrack's own client is silent or would crash: a candidate value that is
a number is compared numerically when the expression's value is a number; a boolean
matches ``True``/``False`` (any case); ``null``, mappings and lists equal nothing (so
``!=`` is true for them) and never satisfy an ordering operator.
"""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Callable, Mapping

__all__ = [
    "MAX_DEPTH",
    "All",
    "Any",
    "CompiledExpression",
    "Condition",
    "Expression",
    "Not",
    "ParseError",
    "Parser",
    "parse",
]

#: Deepest nesting of parentheses/``not`` accepted; deeper text is a ParseError rather
#: than a RecursionError (the server parses expressions sent by any client).
MAX_DEPTH = 64

_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_VALUE_PUNCTUATION = frozenset("-_,./*@+")
_KEY_PUNCTUATION = frozenset("_.")
_LOOKUP_ERRORS = (LookupError, TypeError)
_MESSAGE_TEXT_LIMIT = 200


class ParseError(ValueError):
    """Text that is not a valid expression.

    ``position`` is the 0-based offset of the offending token in ``expression``; the
    message names the token and the position so a user can fix a subscription string
    from the log line alone.
    """

    def __init__(self, problem: str, expression: str, position: int) -> None:
        self.expression = expression
        self.position = position
        shown = (
            expression
            if len(expression) <= _MESSAGE_TEXT_LIMIT
            else (expression[:_MESSAGE_TEXT_LIMIT] + "...")
        )
        super().__init__(f"{problem} at position {position} in expression {shown!r}")


# ------------------------------------------------------------------------ tokenizer
_WORD, _QUOTED, _OP, _LPAREN, _RPAREN, _END = "word", "quoted", "op", "(", ")", "end"


class _Token:
    __slots__ = ("kind", "text", "value", "position")

    def __init__(self, kind: str, text: str, value: str, position: int) -> None:
        self.kind = kind
        self.text = text
        self.value = value
        self.position = position

    def describe(self) -> str:
        return "end of expression" if self.kind == _END else repr(self.text)


def _is_value_char(ch: str) -> bool:
    return ch.isalnum() or ch in _VALUE_PUNCTUATION


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "(":
            tokens.append(_Token(_LPAREN, ch, ch, i))
            i += 1
            continue
        if ch == ")":
            tokens.append(_Token(_RPAREN, ch, ch, i))
            i += 1
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token(_OP, op, op, i))
            i += len(op)
            continue
        if ch in "\"'":
            tokens.append(_read_quoted(text, i))
            i += len(tokens[-1].text)
            continue
        if _is_value_char(ch):
            start = i
            while i < n and _is_value_char(text[i]):
                i += 1
            word = text[start:i]
            tokens.append(_Token(_WORD, word, word, start))
            continue
        raise ParseError(f"unexpected character {ch!r}", text, i)
    tokens.append(_Token(_END, "", "", n))
    return tokens


def _read_quoted(text: str, start: int) -> _Token:
    quote = text[start]
    chars: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            chars.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return _Token(_QUOTED, text[start : i + 1], "".join(chars), start)
        chars.append(ch)
        i += 1
    raise ParseError(f"unterminated quoted value starting with {quote!r}", text, start)


# ------------------------------------------------------------------------ syntax tree
class _Condition:
    __slots__ = ("key", "op", "value")

    def __init__(self, key: str, op: str, value: str) -> None:
        self.key, self.op, self.value = key, op, value


class _Not:
    __slots__ = ("child",)

    def __init__(self, child: typing.Any) -> None:
        self.child = child


class _All:
    __slots__ = ("children",)

    def __init__(self, children: list[typing.Any]) -> None:
        self.children = children


class _Any:
    __slots__ = ("children",)

    def __init__(self, children: list[typing.Any]) -> None:
        self.children = children


def _is_keyword(token: _Token, keyword: str) -> bool:
    return token.kind == _WORD and token.text.lower() == keyword


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, problem: str, token: _Token) -> None:
        raise ParseError(f"{problem}, found {token.describe()}", self.text, token.position)

    def parse(self) -> typing.Any:
        tree = self.parse_or(0)
        token = self.peek()
        if token.kind != _END:
            self.fail("expected 'and', 'or' or the end of the expression", token)
        return tree

    def parse_or(self, depth: int) -> typing.Any:
        children = [self.parse_and(depth)]
        while _is_keyword(self.peek(), "or"):
            self.take()
            children.append(self.parse_and(depth))
        return children[0] if len(children) == 1 else _Any(children)

    def parse_and(self, depth: int) -> typing.Any:
        children = [self.parse_not(depth)]
        while _is_keyword(self.peek(), "and"):
            self.take()
            children.append(self.parse_not(depth))
        return children[0] if len(children) == 1 else _All(children)

    def parse_not(self, depth: int) -> typing.Any:
        token = self.peek()
        if depth >= MAX_DEPTH:
            raise ParseError(
                f"expression nested deeper than {MAX_DEPTH} levels", self.text, token.position
            )
        # "not" followed by an operator is a key named "not", as in ftrack's grammar.
        if _is_keyword(token, "not") and self.peek(1).kind != _OP:
            self.take()
            return _Not(self.parse_not(depth + 1))
        if token.kind == _LPAREN:
            self.take()
            tree = self.parse_or(depth + 1)
            closing = self.peek()
            if closing.kind != _RPAREN:
                self.fail(f"expected ')' to close the '(' at position {token.position}", closing)
            self.take()
            return tree
        return self.parse_condition()

    def parse_condition(self) -> _Condition:
        key = self.peek()
        if key.kind != _WORD:
            self.fail("expected a condition such as topic=ftrack.update", key)
        if not all(ch.isalnum() or ch in _KEY_PUNCTUATION for ch in key.text):
            raise ParseError(
                f"invalid key {key.text!r} (keys are letters, digits, '_' and '.')",
                self.text,
                key.position,
            )
        self.take()
        op = self.peek()
        if op.kind != _OP:
            self.fail(f"expected an operator (= != > < >= <=) after key {key.text!r}", op)
        self.take()
        value = self.peek()
        if value.kind not in (_WORD, _QUOTED):
            self.fail(f"expected a value after {key.text}{op.text}", value)
        self.take()
        return _Condition(key.text, op.text, value.value)


# ------------------------------------------------------------------------ compiler
_Matcher = Callable[[Mapping[str, typing.Any]], bool]
_COMPARE: dict[str, Callable[[typing.Any, typing.Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value else None  # NaN compares unequal to everything


def _boolean(text: str) -> bool | None:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def _non_text_comparator(op: str, value: str, wildcard: bool) -> Callable[[object], bool]:
    """Return how *op value* judges a candidate value that is not a string."""
    compare = _COMPARE[op]
    as_number = _number(value)
    as_bool = _boolean(value)
    unequal = op == "!="

    def judge(candidate: object) -> bool:
        if isinstance(candidate, bool):
            if wildcard:
                return value[:-1] in str(candidate)
            if as_bool is None or op not in ("=", "!="):
                return unequal
            return compare(candidate, as_bool)
        if isinstance(candidate, (int, float)):
            if wildcard:
                return value[:-1] in str(candidate)
            if as_number is None:
                return unequal
            return compare(candidate, as_number)
        # None, mappings, lists and anything else equal nothing and have no order.
        return unequal

    return judge


def _compile_condition(node: _Condition) -> _Matcher:
    parts = tuple(node.key.split("."))
    value = node.value
    wildcard = node.op == "=" and value.endswith("*")
    judge = _non_text_comparator(node.op, value, wildcard)
    if wildcard:
        needle = value[:-1]

        def test_text(text: str) -> bool:
            return needle in text

    else:
        compare = _COMPARE[node.op]

        def test_text(text: str) -> bool:
            return compare(text, value)

    # The common shapes get straight-line code; eq on a one-part key is the hottest.
    if len(parts) == 1:
        (key,) = parts
        if node.op == "=" and not wildcard:

            def match(candidate: Mapping[str, typing.Any]) -> bool:
                try:
                    found = candidate[key]
                except _LOOKUP_ERRORS:
                    return False
                if found.__class__ is str:
                    return found == value
                return judge(found)

            return match

        def match(candidate: Mapping[str, typing.Any]) -> bool:
            try:
                found = candidate[key]
            except _LOOKUP_ERRORS:
                return False
            if found.__class__ is str:
                return test_text(found)
            return judge(found)

        return match

    if len(parts) == 2:
        first, second = parts
        if node.op == "=" and not wildcard:

            def match(candidate: Mapping[str, typing.Any]) -> bool:
                try:
                    found = candidate[first][second]
                except _LOOKUP_ERRORS:
                    return False
                if found.__class__ is str:
                    return found == value
                return judge(found)

            return match

        def match(candidate: Mapping[str, typing.Any]) -> bool:
            try:
                found = candidate[first][second]
            except _LOOKUP_ERRORS:
                return False
            if found.__class__ is str:
                return test_text(found)
            return judge(found)

        return match

    def match_path(candidate: Mapping[str, typing.Any]) -> bool:
        found: typing.Any = candidate
        try:
            for part in parts:
                found = found[part]
        except _LOOKUP_ERRORS:
            return False
        if found.__class__ is str:
            return test_text(found)
        return judge(found)

    return match_path


def _compile(node: typing.Any) -> _Matcher:
    if isinstance(node, _Condition):
        return _compile_condition(node)
    if isinstance(node, _Not):
        inner = _compile(node.child)
        return lambda candidate: not inner(candidate)
    matchers = tuple(_compile(child) for child in node.children)
    if isinstance(node, _All):
        if len(matchers) == 2:
            left, right = matchers
            return lambda candidate: left(candidate) and right(candidate)

        def match_all(candidate: Mapping[str, typing.Any]) -> bool:
            for matcher in matchers:
                if not matcher(candidate):
                    return False
            return True

        return match_all
    if len(matchers) == 2:
        left, right = matchers
        return lambda candidate: left(candidate) or right(candidate)

    def match_any(candidate: Mapping[str, typing.Any]) -> bool:
        for matcher in matchers:
            if matcher(candidate):
                return True
        return False

    return match_any


def _required_topics(node: typing.Any) -> frozenset[str] | None:
    """Exact topics an event must have to match, or None when any topic might match."""
    if isinstance(node, _Condition):
        if node.key == "topic" and node.op == "=" and not node.value.endswith("*"):
            return frozenset((node.value,))
        return None
    if isinstance(node, _All):
        known = [t for t in map(_required_topics, node.children) if t is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(node, _Any):
        options = [_required_topics(child) for child in node.children]
        present = [option for option in options if option is not None]
        if len(present) != len(options):
            return None
        return frozenset[str]().union(*present)
    return None


def _match_everything(candidate: Mapping[str, typing.Any]) -> bool:
    return True


def _bind(node: typing.Any, key: str, value: str) -> typing.Any:
    """Simplify *node* knowing that ``candidate[key] == value``: True, False or a tree."""
    if isinstance(node, _Condition):
        if node.key == key:
            return _compile_condition(node)({key: value})
        return node
    if isinstance(node, _Not):
        child = _bind(node.child, key, value)
        return (not child) if isinstance(child, bool) else _Not(child)
    absorbing = isinstance(node, _Any)  # True absorbs "or", False absorbs "and"
    kept = []
    for child in node.children:
        child = _bind(child, key, value)
        if isinstance(child, bool):
            if child is absorbing:
                return absorbing
            continue
        kept.append(child)
    if not kept:
        return not absorbing
    if len(kept) == 1:
        return kept[0]
    return _Any(kept) if absorbing else _All(kept)


class CompiledExpression:
    """A compiled expression; ``match(candidate)`` tests an event or subscriber metadata.

    ``topics`` is the set of exact topics a matching event must have (``None`` when the
    expression does not pin the topic), so a dispatcher can index subscriptions by topic
    and skip most matchers without calling them.
    """

    __slots__ = ("text", "match", "topics", "_tree")

    def __init__(
        self, text: str, match: _Matcher, topics: frozenset[str] | None, tree: object = True
    ) -> None:
        self.text = text
        self.match = match
        self.topics = topics
        self._tree = tree

    def bind(self, key: str, value: str) -> bool | _Matcher:
        """Partially evaluate for candidates whose top-level *key* equals the string *value*.

        Returns ``True`` (every such candidate matches), ``False`` (none does) or a
        smaller matcher for the rest of the expression.  A dispatcher binds ``topic``
        once per topic and then, for most subscriptions, calls nothing at all per event.
        """
        if "." in key:
            raise ValueError("bind() takes a top-level key")
        bound = _bind(self._tree, key, value) if not isinstance(self._tree, bool) else True
        return bound if isinstance(bound, bool) else _compile(bound)

    def __repr__(self) -> str:
        return f"<Expression {self.text!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompiledExpression) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> CompiledExpression:
    if not text.strip():
        return CompiledExpression(text, _match_everything, None)
    tree = _Parser(text).parse()
    return CompiledExpression(text, _compile(tree), _required_topics(tree), tree)


def parse(text: str) -> CompiledExpression:
    """Parse *text* into a :class:`CompiledExpression`; raise :class:`ParseError`.

    Empty or whitespace-only text matches everything.  Results are cached by text, so
    parsing the same subscription again (every reconnect, every targeted event) is a
    dictionary lookup.
    """
    if not isinstance(text, str):
        raise ParseError(f"expression must be text, not {type(text).__name__}", repr(text), 0)
    return _parse_cached(text)


# ------------------------------------------------------------------------ object model
# ftrack_api exposes expressions as a small tree of objects that callers build and
# inspect (``All([Condition("a", operator.eq, "b"), Not(...)])``).  The tree below
# offers that; :func:`parse` and the hub keep using the compiled closures above.

_MISSING = object()


def _lookup(candidate: Mapping[str, typing.Any], key: str) -> typing.Any:
    value = candidate
    for part in key.split("."):
        try:
            value = value[part]
        except _LOOKUP_ERRORS:
            return _MISSING
    return value


class Expression:
    """The expression that matches every candidate; base of the tree nodes."""

    def __str__(self) -> str:
        return f"<{type(self).__name__}>"

    __repr__ = __str__

    def match(self, candidate: Mapping[str, typing.Any]) -> bool:
        return True


class All(Expression):
    """Matches when every child matches (vacuously true without children)."""

    def __init__(self, expressions: list[Expression] | None = None) -> None:
        self.expressions = list(expressions or [])

    def __str__(self) -> str:
        inner = " ".join(str(expression) for expression in self.expressions)
        return f"<{type(self).__name__} [{inner}]>"

    def match(self, candidate: Mapping[str, typing.Any]) -> bool:
        return all(expression.match(candidate) for expression in self.expressions)


class Any(All):
    """Matches when at least one child matches (never without children)."""

    def match(self, candidate: Mapping[str, typing.Any]) -> bool:
        return any(expression.match(candidate) for expression in self.expressions)


class Not(Expression):
    """Inverts its one child."""

    def __init__(self, expression: Expression) -> None:
        self.expression = expression

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self.expression}>"

    def match(self, candidate: Mapping[str, typing.Any]) -> bool:
        return not self.expression.match(candidate)


class Condition(Expression):
    """``key <operator> value``: *operator* is a two-argument function such as ``operator.eq``.

    A missing key never matches.  With ``operator.eq`` a text value ending in ``*``
    matches candidates whose text starts with what precedes the ``*``.  A text value
    compared with a number is compared as a number when it reads as one.
    """

    def __init__(self, key: str, operator: Callable[..., typing.Any], value: typing.Any) -> None:  # noqa: A002
        self.key = key
        self.operator = operator
        self.value = value
        self._wildcard = (
            operator is _COMPARE["="] and isinstance(value, str) and value.endswith("*")
        )

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self.key}{self.operator}{self.value}>"

    def match(self, candidate: Mapping[str, typing.Any]) -> bool:
        found = _lookup(candidate, self.key)
        if found is _MISSING:
            return False
        if self._wildcard:
            return str(found).startswith(self.value[:-1])
        value = self.value
        if (
            isinstance(value, str)
            and isinstance(found, (int, float))
            and not isinstance(found, bool)
        ):
            number = _number(value)
            if number is not None:
                value = number
        try:
            return bool(self.operator(found, value))
        except TypeError:
            return False


class Parser:
    """Builds the object tree for expression text; raises :class:`ParseError`."""

    def parse(self, expression: str) -> Expression:
        if not isinstance(expression, str):
            raise ParseError(
                f"expression must be text, not {type(expression).__name__}", repr(expression), 0
            )
        if not expression.strip():
            return Expression()
        return _to_objects(_Parser(expression).parse())


def _to_objects(node: typing.Any) -> Expression:
    if isinstance(node, _Condition):
        return Condition(node.key, _COMPARE[node.op], node.value)
    if isinstance(node, _Not):
        return Not(_to_objects(node.child))
    if isinstance(node, _All):
        return All([_to_objects(child) for child in node.children])
    return Any([_to_objects(child) for child in node.children])
