"""Hypothesis strategies for request bodies of any protobuf message type, read from its descriptor.

Bodies come in several kinds: a valid seed request with one or two fields replaced, a generated message
(plausible values mixed with hostile ones: ids that exist, ids that do not, NUL characters, huge numbers, unknown
enum values, NaN in Structs, out-of-range Timestamps and Durations), one with every field set (it gets past "is
required" more often), a generated message with its bytes mutated, one with an invalid-UTF-8 string field
appended, and raw random bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import descriptor, message_factory
from hypothesis import strategies as st

FD = descriptor.FieldDescriptor
MAX_DEPTH = 3

_INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
_HOSTILE_TEXT = [
    "",
    " ",
    "x" * 300,
    "a\x00b",
    "ǅ\u200b\U0001f600",
    "447400123456",
    "+447400123456",
    "07400 123456",
    "+1",
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    '"1"',
    "-1",
    "99999999999999999999",
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "whatsappConversationId",
    "metadata",
    "genesys_conversation_id",
]
_MASK_PATHS = [
    "genesys_conversation_id",
    "genesysConversationId",
    "metadata",
    "name",
    "phone_number",
    "preferences",
    "profile_picture_url",
    "whatsapp_message_id",
    "display_name",
    "event_retention",
]
_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)


def request_bodies(
    message_type: descriptor.Descriptor, known_strings: Sequence[str], seeds: Sequence[Any] = ()
) -> st.SearchStrategy[bytes]:
    """Serialized bodies for a request of `message_type`, of every kind above; with `seeds` (valid requests), also
    a seed with one or two of its fields replaced by generated values, which reaches past validation far more
    often than a message generated from nothing."""
    generated = messages(message_type, known_strings).map(lambda m: m.SerializeToString())
    complete = messages(message_type, known_strings, complete=True).map(lambda m: m.SerializeToString())
    varied = [_variant(seed, known_strings).map(lambda m: m.SerializeToString()) for seed in seeds]
    return st.one_of(
        *varied,
        *varied,
        generated,
        complete,
        st.tuples(generated, st.lists(_mutation(), min_size=1, max_size=3)).map(_mutate),
        st.tuples(generated, _bad_utf8_field(message_type)).map(lambda pair: pair[0] + pair[1]),
        st.binary(max_size=256),
    )


def messages(
    message_type: descriptor.Descriptor, known_strings: Sequence[str], depth: int = 0, complete: bool = False
) -> st.SearchStrategy[Any]:
    """Messages of `message_type` with some fields set; `complete`: every field set (so required fields are
    there and a request gets past the first check more often)."""
    cls = message_factory.GetMessageClass(message_type)
    if message_type.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=8), _JSON, max_size=4).map(lambda d: _struct(cls, d))
    if message_type.full_name == "google.protobuf.Timestamp":
        return st.builds(
            cls,
            seconds=st.one_of(
                st.integers(-(2**40), 2**40),
                st.integers(-62135596800, 253402300799),
                st.sampled_from([-62135596801, -62135596800, 253402300799, 253402300800, 0]),
            ),
            nanos=st.one_of(st.integers(-2, 1_000_000), st.sampled_from([999_999_999, 1_000_000_000, 2_000_000_000])),
        )
    if message_type.full_name == "google.protobuf.FieldMask":
        path = st.one_of(st.sampled_from(_MASK_PATHS), st.text(max_size=10))
        return st.lists(path, max_size=3).map(lambda paths: cls(paths=paths))
    if depth >= MAX_DEPTH:
        return st.just(cls())
    fields = {f.name: _field(f, known_strings, depth, complete) for f in message_type.fields}
    chosen = st.fixed_dictionaries(fields) if complete else st.fixed_dictionaries({}, optional=fields)
    return chosen.map(lambda values: _build(cls, message_type, values))


def _field(
    field: descriptor.FieldDescriptor, known: Sequence[str], depth: int, complete: bool
) -> st.SearchStrategy[Any]:
    single = _value(field, known, depth, complete)
    return st.lists(single, max_size=4) if field.is_repeated else single


def _value(
    field: descriptor.FieldDescriptor, known: Sequence[str], depth: int, complete: bool
) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FD.TYPE_STRING and complete:
        return st.one_of(st.sampled_from(known), st.sampled_from(known), st.text(min_size=1, max_size=20))
    if kind == FD.TYPE_STRING:
        return st.one_of(st.sampled_from([*known, *_HOSTILE_TEXT]), st.uuids().map(str), st.text(max_size=40))
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == FD.TYPE_FLOAT else 64)
    if kind == FD.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(-1, max(numbers) + 3))
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.one_of(st.integers(max(low, -5), min(high, 1_100)), st.sampled_from([low, high]))
    if kind == FD.TYPE_MESSAGE:
        return messages(field.message_type, known, depth + 1, complete)
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def _variant(draw: st.DrawFn, seed: Any, known: Sequence[str]) -> Any:
    message = type(seed)()
    message.CopyFrom(seed)
    for _ in range(draw(st.integers(0, 2))):
        _replace_one(draw, message, known, 0)
    return message


def _replace_one(draw: st.DrawFn, message: Any, known: Sequence[str], depth: int) -> None:
    """Replaces one field of `message` (or, sometimes, one field inside one of its message fields)."""
    field = draw(st.sampled_from(list(message.DESCRIPTOR.fields)))
    nested = field.message_type is not None and not field.is_repeated
    if nested and depth < 2 and field.message_type.fields and draw(st.booleans()):
        if not field.message_type.full_name.startswith("google.protobuf."):
            _replace_one(draw, getattr(message, field.name), known, depth + 1)
            return
    value = draw(_field(field, known, depth, complete=False))
    message.ClearField(field.name)
    _set(message, field, value)


def _build(cls: Any, message_type: descriptor.Descriptor, values: dict[str, Any]) -> Any:
    message = cls()
    for name, value in values.items():
        _set(message, message_type.fields_by_name[name], value)
    return message


def _set(message: Any, field: descriptor.FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return  # no map fields in the contract outside Struct, which has its own strategy
    if field.is_repeated and field.message_type is not None:
        for item in value:
            target.add().CopyFrom(item)
    elif field.is_repeated:
        target.extend(value)
    elif field.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _struct(cls: Any, data: dict[str, Any]) -> Any:
    struct = cls()
    struct.update(data)
    return struct


def _mutation() -> st.SearchStrategy[Callable[[bytes], bytes]]:
    flip = st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)).map(lambda p: lambda b: _flip(b, *p))
    cut = st.integers(0, 1 << 16).map(lambda n: lambda b: b[: n % (len(b) + 1)])
    insert = st.tuples(st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8)).map(
        lambda p: lambda b: b[: p[0] % (len(b) + 1)] + p[1] + b[p[0] % (len(b) + 1) :]
    )
    return st.one_of(flip, cut, insert)


def _flip(body: bytes, at: int, mask: int) -> bytes:
    if not body:
        return body
    at %= len(body)
    return body[:at] + bytes([body[at] ^ mask]) + body[at + 1 :]


def _mutate(pair: tuple[bytes, list[Callable[[bytes], bytes]]]) -> bytes:
    body, mutations = pair
    for mutate in mutations:
        body = mutate(body)
    return body


def _bad_utf8_field(message_type: descriptor.Descriptor) -> st.SearchStrategy[bytes]:
    """A string field of `message_type` on the wire holding bytes that are not UTF-8 (empty if it has none)."""
    numbers = [f.number for f in message_type.fields if f.type == FD.TYPE_STRING]
    if not numbers:
        return st.just(b"")
    junk = st.sampled_from([b"\xff", b"\xc3\x28", b"ab\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
    return st.tuples(st.sampled_from(numbers), junk).map(lambda p: _tag(p[0]) + bytes([len(p[1])]) + p[1])


def _tag(number: int) -> bytes:
    value, out = (number << 3) | 2, bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
