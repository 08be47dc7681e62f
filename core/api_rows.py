"""API lists answered from database rows instead of model instances.

A 100-row page of the value list spent most of its time in DRF's per-field machinery:
building three model instances per row (value, customer, run) and looking up each of 35
attributes through ``Field.get_attribute``. A row plan compiles the serializer's readable
fields once per request into columns for ``values_list`` and one converter per field, and
gives the same JSON, field for field. A serializer with a field the plan cannot read
straight from a column (a method field, a nested serializer, a property) keeps DRF's path.
"""

import decimal
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings


class NotPlain(Exception):
    """The field cannot be read straight from a column."""


@dataclass(frozen=True)
class RowPlan:
    names: tuple[str, ...]  # output keys, in the serializer's order
    columns: tuple[str, ...]  # values_list paths, each once
    positions: tuple[int, ...]  # per output key, its column's position
    converters: tuple  # per output key, value -> JSON-ready value (never called with None)

    def rows(self, queryset: QuerySet):
        return queryset.values_list(*self.columns)

    def represent(self, rows) -> list[dict]:
        fields = tuple(zip(self.names, self.positions, self.converters, strict=True))
        # As DRF's Serializer.to_representation: a missing value is null, whatever the field.
        return [
            {name: None if (value := row[position]) is None else convert(value) for name, position, convert in fields}
            for row in rows
        ]


def row_plan(serializer: serializers.Serializer, queryset: QuerySet) -> RowPlan | None:
    """The plan for ``serializer``'s readable fields over ``queryset``, or None when one field
    needs a model instance."""
    if isinstance(serializer, serializers.ListSerializer) or not isinstance(queryset, QuerySet):
        return None
    names, columns, positions, converters = [], [], [], []
    try:
        for field in serializer._readable_fields:
            column, convert = _plain_field(field, queryset)
            if column not in columns:
                columns.append(column)
            names.append(field.field_name)
            positions.append(columns.index(column))
            converters.append(convert)
    except NotPlain:
        return None
    return RowPlan(tuple(names), tuple(columns), tuple(positions), tuple(converters))


def _plain_field(field, queryset: QuerySet) -> tuple[str, object]:
    if isinstance(field, (serializers.BaseSerializer, serializers.SerializerMethodField, relations.ManyRelatedField)):
        raise NotPlain(field.field_name)
    if field.source == "*":
        raise NotPlain(field.field_name)
    # A field that reads its value its own way (ModelField hands the whole instance on).
    reads = relations.RelatedField if isinstance(field, relations.RelatedField) else drf_fields.Field
    if type(field).get_attribute is not reads.get_attribute:
        raise NotPlain(field.field_name)
    attrs = list(field.source_attrs)
    if isinstance(field, relations.RelatedField):
        if isinstance(field, relations.SlugRelatedField):
            path = attrs + field.slug_field.split("__")
            return _column(queryset, path, field, relation_hop=len(attrs) - 1), _same
        if type(field) is relations.PrimaryKeyRelatedField and field.pk_field is None:
            return _column(queryset, attrs, field, relation_hop=len(attrs) - 1, ends_on_relation=True), _same
        raise NotPlain(field.field_name)
    column = _column(queryset, attrs, field)
    if isinstance(field, drf_fields.DecimalField):
        return column, _decimal_converter(field)
    return column, field.to_representation


def _column(
    queryset: QuerySet, attrs: list[str], field, *, relation_hop: int | None = None, ends_on_relation: bool = False
) -> str:
    """The values_list path of ``attrs``, if it reads what ``field.get_attribute`` would read.
    ``relation_hop``: for a related field, the position in ``attrs`` of the relation itself."""
    if len(attrs) == 1 and attrs[0] in queryset.query.annotations:
        return attrs[0]
    model: type[Model] = queryset.model
    for hop, attr in enumerate(attrs):
        model_field = _model_field(model, attr, field)
        last = hop == len(attrs) - 1
        if last:
            if model_field.is_relation != ends_on_relation and model_field.attname != attr:
                raise NotPlain(field.field_name)
            break
        if not (model_field.many_to_one or model_field.one_to_one) or not model_field.concrete:
            raise NotPlain(field.field_name)
        # Across a missing related row DRF answers null only where the field allows null (or
        # the field is the relation itself); otherwise it leaves the key out or fails. A slug
        # read across a missing row past the relation fails in DRF whatever the field allows.
        if model_field.null and hop != relation_hop:
            if relation_hop is not None and hop > relation_hop:
                raise NotPlain(field.field_name)
            if not (field.allow_null and field.default is drf_fields.empty):
                raise NotPlain(field.field_name)
        model = model_field.related_model
    return "__".join(attrs)


def _model_field(model: type[Model], attr: str, field):
    try:
        model_field = model._meta.get_field(attr)
    except FieldDoesNotExist:
        model_field = next((f for f in model._meta.concrete_fields if f.attname == attr), None)
        if model_field is None:
            raise NotPlain(field.field_name) from None  # a property or method
    if not model_field.concrete or model_field.many_to_many or model_field.one_to_many:
        raise NotPlain(field.field_name)
    return model_field


def _same(value):
    return value


def _decimal_converter(field: drf_fields.DecimalField):
    """DRF's DecimalField.to_representation with its context and exponent made once."""
    coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
    if not coerce or field.localize or field.normalize_output or field.decimal_places is None:
        return field.to_representation
    exponent = decimal.Decimal(".1") ** field.decimal_places
    context = decimal.getcontext().copy()
    if field.max_digits is not None:
        context.prec = field.max_digits
    rounding = field.rounding

    def convert(value):
        if not isinstance(value, decimal.Decimal):
            return field.to_representation(value)
        return f"{value.quantize(exponent, rounding=rounding, context=context):f}"

    return convert


class RowListMixin:
    """DRF's ListModelMixin.list, answered from rows where the serializer allows it."""

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        plan = row_plan(self.get_serializer(), queryset)
        if plan is not None:
            page = self.paginate_queryset(plan.rows(queryset))
            data = plan.represent(page if page is not None else plan.rows(queryset))
        else:
            page = self.paginate_queryset(queryset)
            data = self.get_serializer(page if page is not None else queryset, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)
