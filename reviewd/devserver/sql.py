"""Give a parsed query its meaning: criteria and ordering as SQL, projections as nested entities.

Criteria become one SQLite statement over the root type's table, with references and
collections as non-correlated ``IN (SELECT ...)`` sub-queries (SQLite turns each into a
hashed lookup, so a 10,000-row query stays a single pass).  Projections are then
fetched level by level — one ``IN (...)`` query per attribute per level, never per row —
and nested into the reply the way a real server nests them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reviewd.devserver import errors
from reviewd.devserver.custom_attributes import VALUE_STORAGE, DenseValues
from reviewd.devserver.errors import ApiError
from reviewd.devserver.query import BoolOp, Condition, Not, Query, parse
from reviewd.devserver.schema.model import Attribute, EntityType, Model
from reviewd.devserver.store import Store, quote
from reviewd.devserver.values import parse_datetime, wire_converter

Tree = dict[str, "Tree"]


class QueryEngine:
    """Runs query-language expressions against a :class:`Store`."""

    def __init__(self, model: Model, store: Store) -> None:
        self.model = model
        self.store = store
        self.files: Any = None  # a FileStore: thumbnail URLs point into it
        self._aliases = 0

    # ================================================================== public
    def run(self, expression: object) -> dict:
        """Execute *expression*; the reply of a ``query`` operation."""
        query = parse(expression)
        entity_type = self._type(query.entity_type)
        projections = query.projections
        if projections is None:
            projections = [p.split(".") for p in entity_type.default_projections]
        tree = self._projection_tree(entity_type, projections)
        params: list[Any] = []
        self._aliases = 0
        sql = self._select_sql(
            entity_type, query, "t0", params, self.needed_columns(entity_type, tree)
        )
        limit = query.limit
        sql += f" LIMIT {(limit + 1) if limit is not None else -1} OFFSET {int(query.offset)}"
        columns = self.needed_columns(entity_type, tree)
        rows = [dict(zip(columns, row, strict=True)) for row in self.store.select(sql, params)]
        next_offset = None
        if limit is not None and len(rows) > limit and limit > 0:
            rows = rows[:limit]
            next_offset = query.offset + limit
        elif limit == 0:
            rows = []
        data = self.project(rows, tree)
        return {"action": "query", "data": data, "metadata": {"next": {"offset": next_offset}}}

    # ================================================================== SQL
    def _type(self, name: str) -> EntityType:
        entity_type = self.model.get(name)
        if entity_type is None:
            raise errors.unknown_type(name)
        return entity_type

    def _alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    def _type_filter(self, entity_type: EntityType, alias: str, params: list) -> str:
        table_types = {t.id for t in self.model.types.values() if t.table == entity_type.table}
        if table_types <= entity_type.subtypes:
            return "1"
        members = sorted(entity_type.subtypes)
        params.extend(members)
        return f"{alias}.__type__ IN ({', '.join('?' * len(members))})"

    def needed_columns(self, entity_type: EntityType, tree: Tree) -> list[str]:
        """The stored columns projecting *tree* reads from rows of *entity_type* (or subtypes).

        Reading only these keeps wide tables (contexts have dozens of columns) cheap.
        """
        table = self.model.tables[entity_type.table]
        wanted = dict.fromkeys(["__type__"])
        for type_id in sorted(entity_type.subtypes):
            concrete = self.model.types[type_id]
            wanted.update(dict.fromkeys(concrete.primary_key))
            for name in tree:
                attribute = concrete.attributes.get(name)
                if attribute is None:
                    continue
                if attribute.computed:
                    return list(table)  # computed values may read any column
                if attribute.kind == "scalar":
                    wanted[name] = None
                elif attribute.kind == "reference" and attribute.fk:
                    wanted[attribute.fk] = None
                elif attribute.kind == "mapped":
                    # Which custom attributes apply depends on the owner's kind and project.
                    wanted.update(dict.fromkeys(("object_type_id", "project_id")))
        return [column for column in wanted if column in table]

    def _select_sql(
        self, entity_type: EntityType, query: Query, alias: str, params: list, columns: list[str]
    ) -> str:
        column_list = ", ".join(f"{alias}.{quote(c)}" for c in columns)
        where = self._type_filter(entity_type, alias, params)
        if query.where is not None:
            where += " AND (" + self._criteria(entity_type, alias, query.where, params) + ")"
        order = [self._order_term(entity_type, alias, path, desc) for path, desc in query.order]
        order.append(f"{alias}.rowid")
        return (
            f"SELECT {column_list} FROM {quote(entity_type.table)} AS {alias} WHERE {where} "
            f"ORDER BY {', '.join(order)}"
        )

    def _criteria(self, entity_type: EntityType, alias: str, node: Any, params: list) -> str:
        if isinstance(node, BoolOp):
            joiner = " AND " if node.operator == "and" else " OR "
            return joiner.join(
                "(" + self._criteria(entity_type, alias, item, params) + ")" for item in node.items
            )
        if isinstance(node, Not):
            return "NOT (" + self._criteria(entity_type, alias, node.item, params) + ")"
        if isinstance(node, Condition):
            try:
                return self._condition(entity_type, alias, node.path, node, params)
            except ApiError as error:
                if "position" in error.content:
                    raise
                # Name where in the expression the criterion is, as parse errors do.
                raise ApiError(
                    error.exception,
                    f"{error.content} (criterion '{'.'.join(node.path)} {node.operator}' "
                    f"at position {node.position})",
                    status=error.status,
                ) from None
        raise ApiError("ParseError", "Unsupported query criteria.")

    def _attribute(self, entity_type: EntityType, name: str) -> Attribute:
        attribute = self.model.resolve(entity_type, name)
        if attribute is None:
            raise errors.unknown_attribute(entity_type.id, name)
        return attribute

    def _condition(
        self, entity_type: EntityType, alias: str, path: list[str], cond: Condition, params: list
    ) -> str:
        attribute = self._attribute(entity_type, path[0])
        rest = path[1:]
        operator = cond.operator
        if attribute.kind == "scalar":
            if rest:
                raise ApiError(
                    "ParseError",
                    f"{entity_type.id}.{attribute.name} is not a reference; cannot query "
                    f"'{'.'.join(path)}'.",
                )
            if operator in ("has", "any"):
                raise ApiError(
                    "ParseError",
                    f"'{operator}' needs a reference or collection, not {attribute.name!r}.",
                )
            if attribute.computed:
                derived = COMPUTED_SQL.get(attribute.name)
                if derived is None:
                    raise ApiError(
                        "ParseError", f"Computed attribute {attribute.name!r} cannot be queried."
                    )
                return self._compare(
                    derived(self, entity_type, alias), attribute.data_type, cond, params
                )
            return self._compare(
                f"{alias}.{quote(attribute.name)}", attribute.data_type, cond, params
            )

        target = self._type(attribute.target or "")
        if attribute.link is not None:
            return self._link_condition(entity_type, alias, attribute, target, rest, cond, params)
        if attribute.fk is None:
            raise ApiError(
                "ParseError", f"Attribute {attribute.name!r} cannot be used in criteria."
            )
        if attribute.kind == "reference":
            if not rest and operator != "has":
                # "parent is None", "status in (...ids...)": compare the stored key.
                return self._compare(f"{alias}.{quote(attribute.fk)}", "string", cond, params)
            if rest == target.primary_key and operator not in ("has", "any"):
                return self._compare(f"{alias}.{quote(attribute.fk)}", "string", cond, params)
            inner_alias = self._alias()
            inner = self._inner(target, inner_alias, rest, cond, params)
            key = target.primary_key[0]
            return (
                f"{alias}.{quote(attribute.fk)} IN (SELECT {inner_alias}.{quote(key)} FROM "
                f"{quote(target.table)} AS {inner_alias} WHERE {inner})"
            )
        # collection or mapped collection: some element matches
        if not rest and operator != "any":
            raise ApiError(
                "ParseError",
                f"Collection {attribute.name!r} needs 'any (...)' or an attribute path.",
            )
        inner_alias = self._alias()
        inner = self._inner(target, inner_alias, rest, cond, params)
        owner_key = entity_type.primary_key[0]
        return (
            f"{alias}.{quote(owner_key)} IN (SELECT {inner_alias}.{quote(attribute.fk)} FROM "
            f"{quote(target.table)} AS {inner_alias} WHERE {inner_alias}.{quote(attribute.fk)} "
            f"IS NOT NULL AND {inner})"
        )

    def _link_condition(
        self,
        entity_type: EntityType,
        alias: str,
        attribute: Attribute,
        target: EntityType,
        rest: list[str],
        cond: Condition,
        params: list,
    ) -> str:
        if not rest and cond.operator != "any":
            raise ApiError(
                "ParseError",
                f"Collection {attribute.name!r} needs 'any (...)' or an attribute path.",
            )
        assert attribute.link is not None, "collections are always stored through a link table"
        link_id, mine, theirs = attribute.link
        link_type = self.model.types[link_id]
        link_alias = self._alias()
        inner_alias = self._alias()
        inner = self._inner(target, inner_alias, rest, cond, params)
        return (
            f"{alias}.{quote(entity_type.primary_key[0])} IN (SELECT {link_alias}.{quote(mine)} "
            f"FROM {quote(link_type.table)} AS {link_alias} WHERE {link_alias}.{quote(theirs)} IN "
            f"(SELECT {inner_alias}.{quote(target.primary_key[0])} FROM {quote(target.table)} "
            f"AS {inner_alias} WHERE {inner}))"
        )

    def _inner(
        self, target: EntityType, alias: str, rest: list[str], cond: Condition, params: list
    ) -> str:
        type_filter = self._type_filter(target, alias, params)
        if rest:
            body = self._condition(target, alias, rest, cond, params)
        else:  # has / any: the criteria apply to the related entity
            body = self._criteria(target, alias, cond.value, params)
        return f"{type_filter} AND ({body})"

    def _literal(self, data_type: str | None, value: Any) -> Any:
        if value is None:
            return None
        if data_type == "datetime" and isinstance(value, str):
            try:
                return parse_datetime(value, "query")
            except ApiError:
                return value
        if data_type == "boolean" and isinstance(value, bool):
            return int(value)
        if data_type in ("integer", "number") and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        if isinstance(value, bool):
            return int(value)
        return value

    def _compare(self, column: str, data_type: str | None, cond: Condition, params: list) -> str:
        operator = cond.operator
        value = cond.value
        if data_type in ("variable", "object"):
            # Free-form values are stored as JSON text; compare the decoded value so that
            # ``value > 1000`` is numeric and ``value is "yes"`` matches the string.
            column = f"(CASE WHEN json_valid({column}) THEN json_extract({column}, '$') ELSE {column} END)"
        if operator in ("in", "not_in"):
            negate = "NOT " if operator == "not_in" else ""
            if isinstance(value, Query):
                sub_sql = self._subquery(value, params)
                return f"{column} {negate}IN ({sub_sql})"
            values = [self._literal(data_type, v) for v in value]
            present = [v for v in values if v is not None]
            parts = []
            if present:
                params.extend(present)
                parts.append(f"{column} IN ({', '.join('?' * len(present))})")
            if len(present) != len(values):
                parts.append(f"{column} IS NULL")
            clause = " OR ".join(parts) or "0"
            return f"NOT ({clause})" if negate else f"({clause})"
        if operator in ("has", "any"):
            raise ApiError("ParseError", f"'{operator}' needs a reference or collection.")
        literal = self._literal(data_type, value)
        if operator in ("is", "="):
            if literal is None:
                return f"{column} IS NULL"
            params.append(literal)
            return f"{column} = ?"
        if operator in ("is_not", "!="):
            if literal is None:
                return f"{column} IS NOT NULL"
            params.append(literal)
            return f"{column} IS NOT ?"
        if operator in ("like", "not_like"):
            params.append("" if literal is None else str(value))
            return f"{column} {'NOT ' if operator == 'not_like' else ''}LIKE ?"
        sql_operator = {"after": ">", "before": "<"}.get(operator, operator)
        if literal is None:
            raise ApiError("ParseError", f"Cannot compare with None using {operator!r}.")
        params.append(literal)
        return f"{column} {sql_operator} ?"

    def _subquery(self, query: Query, params: list) -> str:
        entity_type = self._type(query.entity_type)
        if not query.projections or len(query.projections) != 1:
            raise ApiError("ParseError", "A sub-query must select exactly one attribute.")
        alias = self._alias()
        column = self._column_expression(entity_type, alias, query.projections[0])
        where = self._type_filter(entity_type, alias, params)
        if query.where is not None:
            where += " AND (" + self._criteria(entity_type, alias, query.where, params) + ")"
        sql = f"SELECT {column} FROM {quote(entity_type.table)} AS {alias} WHERE {where}"
        if query.limit is not None or query.offset:
            limit = query.limit if query.limit is not None else -1
            sql += f" LIMIT {int(limit)} OFFSET {int(query.offset)}"
        return sql

    def _column_expression(self, entity_type: EntityType, alias: str, path: list[str]) -> str:
        """A SQL expression yielding the value at *path* (scalar, maybe through references)."""
        attribute = self._attribute(entity_type, path[0])
        if len(path) == 1:
            if attribute.kind == "scalar" and not attribute.computed:
                return f"{alias}.{quote(attribute.name)}"
            if attribute.kind == "reference" and attribute.fk:
                return f"{alias}.{quote(attribute.fk)}"
            raise ApiError("ParseError", f"Cannot select or order by {attribute.name!r} here.")
        if attribute.kind != "reference" or not attribute.fk:
            raise ApiError(
                "ParseError", f"Cannot select or order by '{'.'.join(path)}': not a reference path."
            )
        target = self._type(attribute.target or "")
        if path[1:] == target.primary_key:
            return f"{alias}.{quote(attribute.fk)}"
        inner_alias = self._alias()
        inner = self._column_expression(target, inner_alias, path[1:])
        key = target.primary_key[0]
        return (
            f"(SELECT {inner} FROM {quote(target.table)} AS {inner_alias} "
            f"WHERE {inner_alias}.{quote(key)} = {alias}.{quote(attribute.fk)})"
        )

    def _order_term(self, entity_type: EntityType, alias: str, path: list[str], desc: bool) -> str:
        return self._column_expression(entity_type, alias, path) + (" DESC" if desc else " ASC")

    # ================================================================== projection
    def _projection_tree(self, entity_type: EntityType, paths: list[list[str]]) -> Tree:
        tree: Tree = {}
        for path in paths:
            current_type: EntityType | None = entity_type
            node = tree
            for name in path:
                if current_type is None:
                    raise ApiError(
                        "ParseError",
                        f"Cannot project '{'.'.join(path)}': {name!r} follows a value.",
                    )
                attribute = self._attribute(current_type, name)
                node = node.setdefault(name, {})
                current_type = (
                    self.model.get(attribute.target or "") if attribute.kind != "scalar" else None
                )
        return tree

    def project(self, rows: list[dict], tree: Tree) -> list[dict]:
        """Entities (wire form) for stored *rows*, with the attributes in *tree* nested in."""
        types = self.model.types
        entities = []
        groups: dict[str, list[tuple[dict, dict]]] = {}
        for row in rows:
            concrete = types[row["__type__"]]
            entity: dict[str, Any] = {"__entity_type__": concrete.id}
            for key in concrete.primary_key:
                entity[key] = row.get(key)
            entities.append(entity)
            groups.setdefault(concrete.id, []).append((row, entity))
        for type_id, members in groups.items():
            concrete = types[type_id]
            for name, subtree in tree.items():
                attribute = concrete.attributes.get(name)
                if attribute is None:
                    continue
                self._project_attribute(concrete, attribute, members, subtree)
        return entities

    def _project_attribute(
        self,
        entity_type: EntityType,
        attribute: Attribute,
        members: list[tuple[dict, dict]],
        subtree: Tree,
    ) -> None:
        name = attribute.name
        if attribute.computed:
            compute = COMPUTED.get(name)
            for row, entity in members:
                entity[name] = compute(self, entity_type, row, subtree) if compute else None
            return
        if attribute.kind == "scalar":
            convert = wire_converter(attribute.data_type)
            for row, entity in members:
                entity[name] = convert(row.get(name))
            return
        target = self.model.get(attribute.target or "")
        if target is not None and attribute.link is not None:
            self._project_link(entity_type, attribute, target, members, subtree)
            return
        if target is not None and attribute.kind == "mapped" and target.storage == VALUE_STORAGE:
            # Custom attributes: dense, and always with key and value (the client maps on them).
            dense_tree = {"key": {}, "value": {}, **subtree}
            per_owner = DenseValues(self.model, self.store).rows_for(entity_type, target, members)
            flat = [value for values in per_owner for value in values]
            projected = iter(self.project(flat, dense_tree))
            for (_row, entity), values in zip(members, per_owner, strict=True):
                entity[name] = [next(projected) for _ in values]
            return
        if target is None or attribute.fk is None:
            empty: Callable[[], Any] = (lambda: None) if attribute.kind == "reference" else list
            for _row, entity in members:
                entity[name] = empty()
            return
        if attribute.kind == "reference":
            key = target.primary_key[0]
            related = self.store.rows_by(
                target,
                key,
                (row.get(attribute.fk) for row, _ in members),
                self.needed_columns(target, subtree),
            )
            by_key = dict(
                zip((r[key] for r in related), self.project(related, subtree), strict=True)
            )
            for row, entity in members:
                entity[name] = by_key.get(row.get(attribute.fk))
            return
        owner_key = entity_type.primary_key[0]
        child_columns = self.needed_columns(target, subtree)
        if attribute.fk not in child_columns:
            child_columns.append(attribute.fk)
        children = self.store.rows_by(
            target, attribute.fk, (row[owner_key] for row, _ in members), child_columns
        )
        grouped: dict[Any, list] = {}
        for child_row, child in zip(children, self.project(children, subtree), strict=True):
            grouped.setdefault(child_row[attribute.fk], []).append(child)
        for row, entity in members:
            entity[name] = grouped.get(row[owner_key], [])

    def _project_link(
        self,
        entity_type: EntityType,
        attribute: Attribute,
        target: EntityType,
        members: list[tuple[dict, dict]],
        subtree: Tree,
    ) -> None:
        assert attribute.link is not None, "collections are always stored through a link table"
        link_id, mine, theirs = attribute.link
        owner_key = entity_type.primary_key[0]
        links = self.store.rows_by(
            self.model.types[link_id], mine, (r[owner_key] for r, _ in members)
        )
        key = target.primary_key[0]
        items = self.store.rows_by(target, key, (link[theirs] for link in links))
        by_key = dict(zip((r[key] for r in items), self.project(items, subtree), strict=True))
        grouped: dict[Any, list] = {}
        for link in links:
            item = by_key.get(link[theirs])
            if item is not None:
                grouped.setdefault(link[mine], []).append(item)
        for row, entity in members:
            entity[attribute.name] = grouped.get(row[owner_key], [])


# ---------------------------------------------------------------------- computed attributes
def _context_chain(engine: QueryEngine, row: dict) -> list[dict]:
    """Rows from the project down to *row* (inclusive), following ``parent_id``."""
    context = engine.model.get("Context")
    chain = [row]
    seen = {row.get("id")}
    current = row
    while current.get("parent_id") and context is not None:
        parent = engine.store.get_row(context, [current["parent_id"]])
        if parent is None or parent["id"] in seen:
            break
        seen.add(parent["id"])
        chain.append(parent)
        current = parent
    chain.reverse()
    return chain


def _link_entry(engine: QueryEngine, row: dict) -> dict:
    concrete = engine.model.types[row["__type__"]]
    kind = (
        "Project"
        if concrete.storage == "Show"
        else "TypedContext"
        if concrete.is_context
        else concrete.id
    )
    name = row.get("name")
    if concrete.id == "AssetVersion":
        name = f"v{int(row.get('version') or 0):03d}"
    return {"id": row.get("id"), "name": name, "type": kind}


def _compute_link(engine: QueryEngine, entity_type: EntityType, row: dict, _tree: Tree) -> Any:
    if entity_type.is_context:
        return [_link_entry(engine, r) for r in _context_chain(engine, row)]
    if entity_type.id == "AssetVersion":
        asset_type = engine.model.get("Asset")
        asset = engine.store.get_row(asset_type, [row.get("asset_id")]) if asset_type else None
        context = engine.model.get("Context")
        if asset is None or context is None:
            return [_link_entry(engine, row)]
        parent = engine.store.get_row(context, [asset.get("context_id")])
        chain = _context_chain(engine, parent) if parent else []
        # As on a real server the asset itself is not a link: project, contexts, version.
        return [_link_entry(engine, r) for r in [*chain, row]]
    return None


def _compute_ancestors(engine: QueryEngine, entity_type: EntityType, row: dict, tree: Tree) -> Any:
    chain = [
        r
        for r in _context_chain(engine, row)[:-1]
        if engine.model.types[r["__type__"]].storage != "Show"
    ]
    return engine.project(chain, tree)


def _compute_descendants(
    engine: QueryEngine, entity_type: EntityType, row: dict, tree: Tree
) -> Any:
    typed = engine.model.get("TypedContext")
    if typed is None:
        return []
    found: list[dict] = []
    frontier = [row["id"]]
    while frontier:
        children = engine.store.rows_by(typed, "parent_id", frontier)
        found.extend(children)
        frontier = [c["id"] for c in children]
    return engine.project(found, tree)


def _compute_is_latest(engine: QueryEngine, entity_type: EntityType, row: dict, _tree: Tree) -> Any:
    siblings = engine.store.rows_by(entity_type, "asset_id", [row.get("asset_id")])
    top = max((s.get("version") or 0 for s in siblings), default=0)
    return (row.get("version") or 0) >= top


def _compute_latest_version(
    engine: QueryEngine, entity_type: EntityType, row: dict, tree: Tree
) -> Any:
    version_type = engine.model.get("AssetVersion")
    if version_type is None:
        return None
    versions = engine.store.rows_by(version_type, "asset_id", [row["id"]])
    if not versions:
        return None
    latest = max(versions, key=lambda v: v.get("version") or 0)
    return engine.project([latest], tree)[0]


def _compute_thumbnail_url(
    engine: QueryEngine, entity_type: EntityType, row: dict, _tree: Tree
) -> Any:
    thumbnail_id = row.get("thumbnail_id")
    if not thumbnail_id or engine.files is None:
        return None
    return {"url": engine.files.signed_url("thumbnail", thumbnail_id)}


def _is_latest_sql(engine: QueryEngine, entity_type: EntityType, alias: str) -> str:
    """``is_latest_version`` as SQL: no sibling of the same asset has a higher number."""
    table = quote(entity_type.table)
    return (
        f"(CASE WHEN {alias}.{quote('version')} >= (SELECT MAX(latest.{quote('version')}) "
        f"FROM {table} AS latest WHERE latest.{quote('asset_id')} = {alias}.{quote('asset_id')})"
        " THEN 1 ELSE 0 END)"
    )


# Derived attributes that criteria may use, as SQL over the row's own table.
COMPUTED_SQL: dict[str, Callable[[QueryEngine, EntityType, str], str]] = {
    "is_latest_version": _is_latest_sql,
}


COMPUTED: dict[str, Callable[[QueryEngine, EntityType, dict, Tree], Any]] = {
    "bid_time_logged_difference": lambda _engine, _type, row, _tree: row.get("bid") or 0,
    "thumbnail_url": _compute_thumbnail_url,
    "link": _compute_link,
    "ancestors": _compute_ancestors,
    "descendants": _compute_descendants,
    "is_latest_version": _compute_is_latest,
    "latest_version": _compute_latest_version,
    "time_logged": lambda *_: 0,
}
