"""What `models.py` (one class per collection) is rendered from: the collections' fields as plain
data for templates/models.py.j2, with every Python name chosen here, once and deterministically.

Names: a collection's class is its `model:` (else made from its name); an object field with
declared fields gets a class named after the path (`EmailEventSender`, `PatternEvidenceItem`), a
string enum a type alias (`EmailEventEventType`), a collection with references a `<Model>Refs`
namespace. A field keeps its own name as attribute unless Python or pydantic forbid it (then
`from_`, with `from` as its name in MongoDB). Values (names, enum values, patterns, defaults) reach
the template as data, escaped there by the `py` and `ident` filters.
"""

from __future__ import annotations

from typing import Any

from bootstrap.codegen.pynames import attribute_name, class_name, pascal, unique, usable
from bootstrap.spec.model import Collection, Field, FieldType, Spec, thaw

Inputs = dict[str, Any]

TIMESTAMPS = ("createdAt", "updatedAt")
# Names an annotation in a class body may use: a field with a default bound to one of them would
# shadow it for the fields after it.
_ANNOTATION_NAMES = frozenset({"list", "dict", "str", "float", "int", "bool"})
_KIND_NAMES = {
    FieldType.STRING: "String",
    FieldType.NUMBER: "Number",
    FieldType.INT: "Int",
    FieldType.LONG: "Long",
    FieldType.DOUBLE: "Double",
    FieldType.DECIMAL: "Decimal",
    FieldType.BOOL: "Bool",
    FieldType.DATE: "Date",
    FieldType.OBJECT_ID: "ObjectId",
}


def model_names(spec: Spec) -> dict[str, str]:
    """Collection name -> class name: `model:` where declared, else made from the name (and kept
    apart from the declared ones)."""
    taken = {c.model for c in spec.collections if c.model}
    return {c.name: c.model or unique(class_name(c.name), taken) for c in spec.collections}


class _Builder:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.models = model_names(spec)
        self.taken: set[str] = set(self.models.values())
        self.enums: list[Inputs] = []
        self.classes: list[Inputs] = []
        self.refs: list[Inputs] = []

    def build(self) -> Inputs:
        # Class and alias names first, so that no attribute can shadow one of them.
        plans = [(coll, self._name_subclasses(self.models[coll.name], coll.fields)) for coll in self.spec.collections]
        self.taken.update(f"{self.models[c.name]}Refs" for c in self.spec.collections)
        for coll, names in plans:
            self._collection(coll, names)
        return {
            "enums": self.enums,
            "classes": self.classes,
            "refs": self.refs,
            "all": sorted([*self.models.values(), *(r["name"] for r in self.refs)]),
        }

    # --- names ------------------------------------------------------------------------------------

    def _name_subclasses(self, owner: str, fields: tuple[Field, ...]) -> dict[int, str]:
        """A name for every subdocument class and enum alias under `fields`, keyed by id(Field)."""
        names: dict[int, str] = {}

        def visit(fld: Field, stem: str) -> None:
            if fld.type is FieldType.STRING and fld.enum is not None:
                names[id(fld)] = unique(stem, self.taken)
            if _is_subdocument(fld):
                names[id(fld)] = unique(stem, self.taken)
                for sub in fld.fields:
                    visit(sub, names[id(fld)] + pascal(sub.name))
            if fld.items is not None:
                visit(fld.items, f"{stem}Item")
            if fld.values is not None:
                visit(fld.values, f"{stem}Value")

        for fld in fields:
            visit(fld, owner + pascal(fld.name))
        return names

    def _attributes(self, fields: list[Field]) -> dict[str, str]:
        """Field name -> attribute: usable names first (they keep themselves), then the renamed."""
        blocked = self.taken | _ANNOTATION_NAMES
        kept = {f.name for f in fields if usable(f.name) and f.name not in blocked}
        attrs: dict[str, str] = {}
        for fld in fields:
            if fld.name in kept:
                attrs[fld.name] = fld.name
            else:
                attrs[fld.name] = attribute_name(fld.name, kept | blocked | set(attrs.values()))
                if attrs[fld.name] in blocked:
                    attrs[fld.name] = attribute_name(fld.name + "_", kept | blocked | set(attrs.values()))
        return attrs

    # --- classes ------------------------------------------------------------------------------------

    def _collection(self, coll: Collection, names: dict[int, str]) -> None:
        model = self.models[coll.name]
        # `_id` is Document.id, an ObjectId (a declared `_id` of another type is not modelled).
        fields = [f for f in coll.fields if f.name != "_id"]
        if coll.timestamps:
            fields += [Field(name, FieldType.DATE) for name in TIMESTAMPS]
        attrs = self._attributes(fields)
        entries = [self._field(fld, attrs[fld.name], names, model) for fld in fields]
        self.classes.append(
            {
                "name": model,
                "document": True,
                "collection": coll.name,
                "timestamps": coll.timestamps,
                "forbid": not coll.additional_fields,
                "fields": entries,
            }
        )
        found: list[Inputs] = []
        for fld in fields:
            self._references(fld, attrs[fld.name], found, names)
        targets = [{**r, "target": self.models[r["target"]]} for r in found if r["target"] in self.models]
        if targets:
            taken: set[str] = set()
            for ref in targets:  # `metadata.automatedByRule` -> `metadata__automatedByRule`
                ref["attr"] = unique(ref["path"].replace(".", "__"), taken)
            self.refs.append({"name": f"{model}Refs", "model": model, "refs": targets})

    def _subdocument(self, fld: Field, name: str, names: dict[int, str], owner: str) -> None:
        attrs = self._attributes(list(fld.fields))
        entries = [self._field(sub, attrs[sub.name], names, owner) for sub in fld.fields]
        self.classes.append(
            {
                "name": name,
                "document": False,
                "owner": owner,
                "forbid": not fld.additional_fields,
                "fields": entries,
            }
        )

    def _field(self, fld: Field, attr: str, names: dict[int, str], owner: str) -> Inputs:
        kind = self._type(fld, names, owner)
        required = fld.required
        return {
            "attr": attr,
            "name": fld.name,
            "renamed": attr != fld.name,
            "type": kind,
            "nullable": fld.nullable and fld.type is not FieldType.ANY,
            "not_null": not required and not fld.nullable and fld.type is not FieldType.ANY,
            "default": self._default(fld, names),
        }

    def _type(self, fld: Field, names: dict[int, str], owner: str) -> Inputs:
        """A field's type as data: its kind, class or alias, constraints, elements."""
        kind: Inputs = {"kind": fld.type.value, "meta": []}
        meta: list[Inputs] = kind["meta"]
        if fld.type in _KIND_NAMES:
            kind["base"] = _KIND_NAMES[fld.type]
        if fld.type is FieldType.STRING and fld.enum is not None:
            alias = names[id(fld)]
            values = [v for v in thaw(fld.enum) if v is not None]
            self.enums.append({"name": alias, "values": values})
            kind["alias"] = alias
        elif fld.enum is not None:  # numeric: compared numerically, as MongoDB does
            meta.append({"name": "OneOf", "args": [v for v in thaw(fld.enum) if v is not None], "kwargs": {}})
        if fld.type is FieldType.STRING and fld.enum is None:
            text = {"min_length": fld.min_length, "max_length": fld.max_length, "pattern": fld.pattern}
            text = {k: v for k, v in text.items() if v is not None}
            if text:
                meta.append({"name": "Text", "args": [], "kwargs": text})
        if fld.type.numeric and fld.enum is None and (fld.minimum is not None or fld.maximum is not None):
            bounds = {"ge": fld.minimum, "le": fld.maximum}
            meta.append({"name": "Range", "args": [], "kwargs": {k: v for k, v in bounds.items() if v is not None}})
        if fld.type is FieldType.ARRAY:
            kind["items"] = self._element(fld.items, names, owner)
            counts = {"min_items": fld.min_items, "max_items": fld.max_items, "unique": fld.unique_items or None}
            counts = {k: v for k, v in counts.items() if v is not None}
            if counts:
                meta.append({"name": "Items", "args": [], "kwargs": counts})
        if fld.type is FieldType.MAP:
            kind["values"] = self._element(fld.values, names, owner)
        if fld.ref is not None:
            meta.append({"name": "Ref", "args": [fld.ref], "kwargs": {}})
        if _is_subdocument(fld):
            kind["kind"] = "model"
            kind["class"] = names[id(fld)]
            self._subdocument(fld, names[id(fld)], names, owner)
        return kind

    def _element(self, fld: Field | None, names: dict[int, str], owner: str) -> Inputs:
        if fld is None:
            return {"kind": "any", "meta": [], "nullable": False}
        return {**self._type(fld, names, owner), "nullable": fld.nullable and fld.type is not FieldType.ANY}

    def _default(self, fld: Field, names: dict[int, str]) -> Inputs:
        if not fld.has_default:
            if fld.required:
                return {"kind": "required"}
            if _is_subdocument(fld) and _builds_itself(fld):
                return {"kind": "build", "class": names[id(fld)]}  # Mongoose creates it with its defaults
            return {"kind": "absent"}
        value = thaw(fld.default)
        if fld.type is FieldType.DATE and value == "now":
            return {"kind": "now", "required": fld.required}
        if isinstance(value, dict | list):
            return {"kind": "copy", "value": value, "required": fld.required}
        exact = value is None or _exact(fld.type, value)
        return {"kind": "value", "value": value, "validate": not exact, "required": fld.required}

    # --- references -------------------------------------------------------------------------------

    def _references(self, fld: Field, path: str, found: list[Inputs], names: dict[int, str]) -> None:
        """Every `ref:` under `fld` (whose attribute path is `path`): through subdocuments, array
        elements and map values."""
        if fld.ref is not None:
            found.append({"path": path, "target": fld.ref})
        for element in (fld.items, fld.values):
            if element is not None:
                self._references(element, path, found, names)
        if _is_subdocument(fld):
            attrs = self._attributes(list(fld.fields))
            for sub in fld.fields:
                self._references(sub, f"{path}.{attrs[sub.name]}", found, names)


def _is_subdocument(fld: Field) -> bool:
    return fld.type is FieldType.OBJECT and (bool(fld.fields) or not fld.additional_fields)


def _builds_itself(fld: Field) -> bool:
    """An object whose fields have defaults and none is required: built when left out."""
    return not any(f.required for f in fld.fields) and any(
        f.has_default or (_is_subdocument(f) and _builds_itself(f)) for f in fld.fields
    )


def _exact(kind: FieldType, value: Any) -> bool:
    """Whether a default from YAML is already the value the field holds (else it is validated,
    which casts: an ISO string to a date, an int to a double, a number to a Decimal)."""
    if kind in (FieldType.DATE, FieldType.OBJECT_ID, FieldType.DECIMAL):
        return False
    if kind is FieldType.DOUBLE:
        return isinstance(value, float)
    return True


def models_inputs(spec: Spec) -> Inputs:
    return _Builder(spec).build()
