"""Schemathesis hooks for the OpenAPI conformance run (docs/schemathesis.md), loaded
through SCHEMATHESIS_HOOKS by `cargo xtask schemathesis`.

Webhook destinations. A generated `replyUrl` (or its alias `webhook_url`) that matches
the document's pattern is valid by the document, but whether Kiln accepts it also
depends on where it points (the destination rules refuse private, loopback and
single-label hosts: 400 `invalid_reply_url`), which OpenAPI cannot express; and where
Kiln accepts it, the edge would deliver webhooks there. So every such value is replaced,
before the request is sent, by the run's own receiver on 127.0.0.1 (allowed by the test
stack's WEBHOOK_ALLOW_HOSTS). Values that do not match the pattern, or are too long, or
are not strings, are left as generated: they are what the negative cases test.
"""

import base64
import json
import os
import pathlib
import re

import schemathesis
from hypothesis import strategies as st

RECEIVER = os.environ["KILN_SCHEMATHESIS_RECEIVER"]
# The pattern and maxLength of `replyUrl` (and its alias `webhook_url`), read from the
# committed docs/openapi.json, with `\Z` for the final `$` (Python's `$` also matches
# before a final line break, ECMA 262's does not). The document spells its character
# classes out as `\uXXXX` escapes, which Python's `re` reads as ECMA 262 does.
_DOC = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
_REPLY_URL = _DOC["components"]["schemas"]["ImageGenerationRequest"]["properties"]["replyUrl"]
_PATTERN = _REPLY_URL["pattern"].removeprefix("^$|")
assert _PATTERN.endswith("$"), _PATTERN
DOCUMENTED = re.compile(_PATTERN[:-1] + r"\Z")
LENGTH_MAX = _REPLY_URL["maxLength"]
FIELDS = ("replyUrl", "webhook_url")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    for name in FIELDS:
        value = body.get(name)
        if isinstance(value, str) and len(value) <= LENGTH_MAX and DOCUMENTED.search(value):
            body[name] = RECEIVER


# Image files. The upload and edit forms declare their file parts as images
# (`encoding.contentType: image/png, image/jpeg, image/webp, image/gif`); Kiln reads the
# format from the bytes, so a part sent as one of these types must be a file of it. These
# are the smallest well-formed files of each (1×1 pixel).
IMAGES = {
    "image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==",
    "image/gif": "R0lGODdhAQABAIEAAAAAAAAAAAAAAAAAACwAAAAAAQABAAAIBAABBAQAOw==",
    "image/webp": "UklGRhoAAABXRUJQVlA4TA4AAAAvAAAAAAcQEf0PRET/Aw==",
    "image/jpeg": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAFA3PEY8MlBGQUZaVVBfeMiCeG5uePWvuZHI////////////////////////////////////////"
        "////////////wAALCAABAAEBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQR"
        "BRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4"
        "eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEB"
        "AAA/AKVf/9k="
    ),
}
for media_type, data in IMAGES.items():
    schemathesis.openapi.media_type(media_type, st.just(base64.b64decode(data)))


# A generator slip, not a finding. Schemathesis 4.32.5's coverage phase builds one
# "positive" multipart body per form with custom part encodings, and fills each required
# text field it has no strategy for with "" whatever the field's `minLength`
# (`_generate_multipart_body_from_custom_strategies` in
# schemathesis/specs/openapi/coverage/_operation.py): for POST /v1/images/edits that is
# `prompt: ""`, which the document itself calls invalid (`minLength: 1`) and Kiln rightly
# refuses. Only that case is dropped: a "schema-valid request rejected" failure on a
# multipart body with a required field that is "" although its schema asks for at least
# one character.
@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if getattr(failure, "code", None) != "ST202":
        return True
    body = case.body
    if not isinstance(body, dict) or not (case.media_type or "").startswith("multipart/"):
        return True
    definition = case.operation.get_body_for_media_type(case.media_type)
    schema = (definition.resolved_schema if definition is not None else None) or {}
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if body.get(name) == "" and properties.get(name, {}).get("minLength", 0) >= 1:
            return False
    return True
