"""Each service's /openapi.json against the code: a valid document, real answers that match it,
and a bounded schemathesis run that finds no 5xx and no answer outside the description.

The apps run in process (Flask's test client, schemathesis' WSGI transport) on the session's
models. Generated images are random bytes (refused before any model runs) or schemathesis' 1x1
PNG/JPEG samples, and the explicit examples are a 32x32 PNG, so the property runs cost little
CPU whatever canvas_size and mag_ratio come with them.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from jsonschema import Draft4Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.config import Settings
from common.errors import ERRORS_BY_CODE
from common.openapi import EXAMPLE_PNG_B64, MAX_IMAGES_PER_BATCH, SERVICE_PATHS
from tests.render import png_bytes, png_header_only, render_words

SERVICES = ("std", "str", "pipeline")
SPEC_URI = "urn:ocr:openapi"
UNROUTED = {"NotFound": 404, "MethodNotAllowed": 405}  # answers of no operation
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    jobs_db = tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"
    return Settings(ocr_threads=2, ocr_timeout_s=60.0, ocr_jobs_db=f"sqlite:///{jobs_db}")


def build_app(service: str, config: Settings, detector, recognizer, closers=None) -> Flask:
    """The real app of ``service`` on the shared models (the pipeline embedded); the pipeline's
    bucket thread is stopped by a callable appended to ``closers``."""
    if service == "std":
        from std_service.app import create_app

        return create_app(config, detector)
    if service == "str":
        from str_service.app import create_app

        return create_app(config, recognizer)
    from pipeline.app import create_app
    from pipeline.topology import build_topology

    topology = build_topology(config, detector, recognizer)
    if closers is not None:
        closers.append(topology.close)
    return create_app(config, topology)


@pytest.fixture(scope="module")
def apps(service_settings: Settings, detector, recognizer) -> Iterator[dict[str, Flask]]:
    closers: list = []
    built = {
        name: build_app(name, service_settings, detector, recognizer, closers) for name in SERVICES
    }
    yield built
    for close in closers:
        close()


def spec_of(app: Flask) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200, response.data[:200]
    assert response.mimetype == "application/json"
    return response.get_json()


# --- the document itself ---------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_spec_is_valid_openapi_3(apps: dict[str, Flask], service: str) -> None:
    spec = spec_of(apps[service])
    validate_spec(spec)  # raises with the offending pointer when the document is not OpenAPI 3
    assert spec["openapi"].startswith("3.")


@pytest.mark.parametrize("service", SERVICES)
def test_spec_documents_exactly_the_routes(apps: dict[str, Flask], service: str) -> None:
    """Every route the app serves is described and every described operation is routed."""
    app = apps[service]
    routed = {
        (re.sub(r"<(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in spec_of(app)["paths"].items() for method in item}
    assert routed == described
    assert {p for p, _ in described} >= set(SERVICE_PATHS[service])


def test_spec_lists_every_error_class_under_its_status(apps: dict[str, Flask]) -> None:
    """A new error class in common/errors.py without its place in the description fails here."""
    spec = spec_of(apps["pipeline"])
    documented = _documented_codes(spec)
    missing = {
        code: cls.status
        for code, cls in ERRORS_BY_CODE.items()
        if code not in documented.get(cls.status, set())
    }
    assert not missing, f"error codes missing from the spec under their status: {missing}"


def test_spec_constants_match_the_code(apps: dict[str, Flask]) -> None:
    from pipeline.app import MAX_IMAGES_PER_BATCH as PIPELINE_LIMIT

    assert MAX_IMAGES_PER_BATCH == PIPELINE_LIMIT
    schemas = spec_of(apps["std"])["components"]["schemas"]
    params = schemas["DetectionParameters"]["properties"]
    defaults = {
        name: schemas[prop["$ref"].rsplit("/", 1)[1]]["default"] for name, prop in params.items()
    }
    assert defaults == asdict(Settings().profile.detection)


def test_openapi_needs_no_api_key(service_settings: Settings, detector) -> None:
    app = build_app("std", service_settings.with_overrides(ocr_api_key="s3cret"), detector, None)
    client = app.test_client()
    assert client.get("/openapi.json").status_code == 200
    assert client.post("/detection").status_code == 401


def _documented_codes(spec: dict) -> dict[int, set[str]]:
    """status -> error codes named anywhere in the document (operations and components)."""
    found: dict[int, set[str]] = {}

    def visit(status: int, response: dict) -> None:
        response = resolve(spec, response)
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        for part in schema.get("allOf", []):
            error = part.get("properties", {}).get("error", {}).get("properties", {})
            found.setdefault(status, set()).update(error.get("code", {}).get("enum", []))

    for item in spec["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                visit(int(status), response)
    for name, status in UNROUTED.items():
        visit(status, spec["components"]["responses"][name])
    return found


# --- real answers against the description ----------------------------------------------------


def pointer_parts(reference: str) -> list[str]:
    """``#/a/b~1c`` -> ["a", "b/c"] (JSON pointer unescaping)."""
    parts = reference.removeprefix("#/").split("/")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def resolve(spec: dict, node: dict) -> dict:
    return locate(spec, node)[1]


def locate(spec: dict, node: dict, parts: list[str] | None = None) -> tuple[list[str], dict]:
    """Follow ``node``'s $ref chain; return the final node and its pointer parts."""
    parts = parts or []
    while "$ref" in node:
        parts = pointer_parts(node["$ref"])
        node = spec
        for part in parts:
            node = node[part]
    return parts, node


def response_pointer(spec: dict, path: str | None, method: str, status: int) -> list[str]:
    """Where the description of this answer lives; None as path: no operation (404/405)."""
    if path is None:
        names = {status: name for name, status in UNROUTED.items()}
        return ["components", "responses", names[status]]
    responses = spec["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    start = ["paths", path, method, "responses", str(status)]
    parts, _ = locate(spec, responses[str(status)], start)
    return parts


def assert_conforms(spec: dict, response, pointer: list[str]) -> None:
    """The answer's media type is described there and its body validates against the schema."""
    node = spec
    for part in pointer:
        node = node[part]
    content = node["content"]
    assert response.mimetype in content, (response.mimetype, list(content))
    escaped = [p.replace("~", "~0").replace("/", "~1") for p in pointer]
    target = "/".join([*escaped, "content", response.mimetype.replace("/", "~1"), "schema"])
    registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT4))
    validator = Draft4Validator({"$ref": f"{SPEC_URI}#/{target}"}, registry=registry)
    if response.mimetype == "application/json":
        body = response.get_json()
    else:
        body = response.get_data(as_text=True)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def page() -> tuple[bytes, list]:
    image, boxes = render_words([["open", "spec"], ["drift"]])
    return png_bytes(image), [quad for _, quad in boxes]


def probes(service: str, page: tuple[bytes, list]) -> list[tuple]:
    """(method, path, request kwargs, status, error code or None) for real requests."""
    png, quads = page
    garbage = b"definitely not an image"
    huge = png_header_only(100_000, 100_000)
    blank = png_bytes(np.full((1000, 1000, 3), 255, np.uint8))
    costly = {"image": b64(blank), "canvas_size": 4096, "mag_ratio": 5}  # over the pixel budget
    past = {"X-OCR-Deadline": "1"}  # 1 ms after the epoch
    common = [
        ("get", "/healthz", {}, 200, None),
        ("get", "/readyz", {}, 200, None),
        ("get", "/metrics", {}, 200, None),
        ("get", "/openapi.json", {}, 200, None),
        ("get", "/no/such/endpoint", {}, 404, "not_found"),
        ("delete", "/healthz", {}, 405, "method_not_allowed"),
    ]
    detect = [
        ("post", "/detection", {"data": {"image": (io.BytesIO(png), "p.png")}}, 200, None),
        ("post", "/detection", {"json": {"image": b64(png), "poly": True}}, 200, None),
        ("post", "/detection", {"data": {"canvas_size": "640"}}, 400, "missing_image"),
        ("post", "/detection", {"json": {"image": b64(garbage)}}, 400, "invalid_image"),
        (
            "post",
            "/detection",
            {"json": {"image": b64(png), "canvas_size": 8}},
            400,
            "invalid_parameter",
        ),
        ("post", "/detection", {"json": {"image": b64(huge)}}, 413, "image_too_large"),
        (
            "post",
            "/detection",
            {"data": b"x", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        ("get", "/detection", {}, 405, "method_not_allowed"),
        ("post", "/detection", {"json": costly}, 422, "over_budget"),
        ("post", "/detection", {"json": {"image": b64(png)}, "headers": past}, 504, "timeout"),
        (
            "post",
            "/detection",
            {"json": {"image": b64(png)}, "headers": {"X-OCR-Deadline": "soon"}},
            400,
            "invalid_parameter",
        ),
    ]
    image_and_boxes = {"image": (io.BytesIO(png), "p.png"), "boxes": json.dumps(quads)}
    recognize = [
        ("post", "/recognition", {"data": image_and_boxes}, 200, None),
        ("post", "/recognition", {"json": {"crops": [b64(png), b64(png)]}}, 200, None),
        (
            "post",
            "/recognition",
            {"json": {"image": b64(png), "boxes": [[[1, 2]]]}},
            400,
            "invalid_boxes",
        ),
        ("post", "/recognition", {"json": {"image": b64(png)}}, 400, "invalid_parameter"),
        ("post", "/recognition", {"json": {}}, 400, "missing_image"),
        ("post", "/recognition", {"json": {"crops": [b64(garbage)]}}, 400, "invalid_image"),
    ]
    ocr = [
        ("post", "/ocr", {"data": {"image": (io.BytesIO(png), "p.png")}}, 200, None),
        ("post", "/pipeline", {"json": {"image": b64(png)}}, 200, None),
        ("post", "/batch_ocr", {"json": {"images": [b64(png), EXAMPLE_PNG_B64]}}, 200, None),
        ("post", "/batch_ocr", {"json": {"images": [b64(garbage)] * 33}}, 400, "invalid_parameter"),
        ("post", "/ocr", {"json": {"image": b64(png), "low_text": 0}}, 400, "invalid_parameter"),
        ("post", "/pipeline", {"json": ["not", "an", "object"]}, 400, "invalid_parameter"),
        ("post", "/ocr", {"json": costly}, 422, "over_budget"),
        ("post", "/batch_ocr", {"json": {"images": [b64(png)]}, "headers": past}, 504, "timeout"),
    ]
    return common + {"std": detect, "str": recognize, "pipeline": detect + recognize + ocr}[service]


@pytest.mark.parametrize("service", SERVICES)
def test_real_answers_match_the_spec(
    apps: dict[str, Flask], service: str, page: tuple[bytes, list]
) -> None:
    app = apps[service]
    spec = spec_of(app)
    client = app.test_client()
    for method, path, kwargs, status, code in probes(service, page):
        response = getattr(client, method)(path, **kwargs)
        label = f"{method.upper()} {path} {sorted(kwargs)}"
        assert response.status_code == status, (label, response.data[:300])
        if code is not None:
            assert response.get_json()["error"]["code"] == code, label
        documented = path if path in spec["paths"] and method in spec["paths"][path] else None
        assert_conforms(spec, response, response_pointer(spec, documented, method, status))


def test_job_answers_match_the_spec(apps: dict[str, Flask], page: tuple[bytes, list]) -> None:
    """Each jobs operation on a real job, answered as the description says."""
    app = apps["pipeline"]
    spec = spec_of(app)
    client = app.test_client()
    png, _ = page

    def check(response, path: str, method: str, status: int, code: str | None = None) -> dict:
        assert response.status_code == status, (method, path, response.data[:300])
        if code is not None:
            assert response.get_json()["error"]["code"] == code
        assert_conforms(spec, response, response_pointer(spec, path, method, status))
        return response.get_json()

    key = {"Idempotency-Key": f"spec-{time.time()}"}
    body = {"json": {"images": [b64(png)]}, "headers": key}
    job = check(client.post("/jobs", **body), "/jobs", "post", 202)
    assert check(client.post("/jobs", **body), "/jobs", "post", 200)["id"] == job["id"]
    check(client.get("/jobs?limit=5"), "/jobs", "get", 200)
    check(client.get("/jobs?limit=0"), "/jobs", "get", 400, "invalid_parameter")
    one = f"/jobs/{job['id']}"
    for _ in range(240):
        status = check(client.get(one), "/jobs/{job_id}", "get", 200)["status"]
        if status == "done":
            break
        check(client.get(one + "/result"), "/jobs/{job_id}/result", "get", 409, "job_not_finished")
        time.sleep(0.25)
    assert status == "done"
    result = check(client.get(one + "/result"), "/jobs/{job_id}/result", "get", 200)
    assert result["text"] == "open spec\ndrift"
    check(client.delete(one), "/jobs/{job_id}", "delete", 409, "job_finished")
    check(client.get("/jobs/nope"), "/jobs/{job_id}", "get", 404, "not_found")
    check(client.post("/jobs", json={}), "/jobs", "post", 400, "missing_image")


def test_limit_answers_match_the_spec(
    service_settings: Settings,
    detector,
    recognizer,
    page: tuple[bytes, list],
) -> None:
    """401, 413 payload_too_large (body size and crop count) as the description says."""
    png, _ = page
    limited = service_settings.with_overrides(
        ocr_api_key="k", ocr_max_upload_mb=0.001, str_max_crops=1
    )
    std = build_app("std", limited, detector, recognizer)
    str_ = build_app("str", limited, detector, recognizer)
    key = {"X-API-Key": "k"}
    cases = [
        (std, "/detection", {}, 401, "unauthorized"),
        (
            std,
            "/detection",
            {"headers": key, "data": {"image": (io.BytesIO(png), "p.png")}},
            413,
            "payload_too_large",
        ),
        (
            str_,
            "/recognition",
            {"headers": key, "json": {"crops": ["", ""]}},
            413,
            "payload_too_large",
        ),
    ]
    for app, path, kwargs, status, code in cases:
        spec = spec_of(app)
        response = app.test_client().post(path, **kwargs)
        assert response.status_code == status, (path, response.data[:300])
        assert response.get_json()["error"]["code"] == code
        assert_conforms(spec, response, response_pointer(spec, path, "post", status))


# --- schemathesis: generated requests against the real apps ----------------------------------

# Per operation and generation mode; the explicit examples run besides. Deterministic, so a run
# in CI is the run here; no example database is written.
FUZZ_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
    print_blob=True,
)


def exercise(case) -> int:
    """Send one generated request to the app, run the checks on its answer; its status."""
    # A past X-OCR-Deadline is answered 504 by design, and generated epochs are all past: a valid
    # one is moved an hour ahead (still parsed, never expiring); malformed ones stay (400).
    headers = dict(case.headers or {})
    for name in [k for k in headers if k.lower() == "x-ocr-deadline"]:
        try:
            valid = float(headers[name]) > 0
        except (TypeError, ValueError):
            valid = False
        if valid:
            headers[name] = str(int((time.time() + 3600) * 1000))
    case.headers = headers
    return case.call_and_validate(checks=CHECKS).status_code


def strategies(operation) -> list:
    """The operation's explicit examples, then positive and negative generated requests.

    The GET operations take no input, so there is nothing to make negative.
    """
    modes = [GenerationMode.POSITIVE]
    if operation.method.lower() == "post":
        modes.append(GenerationMode.NEGATIVE)
    found = list(operation.schema.get_strategies_from_examples(operation))
    return found + [operation.as_strategy(generation_mode=mode) for mode in modes]


def fuzz(strategy, statuses: Counter) -> None:
    """Run the bounded hypothesis loop over ``strategy``, counting the statuses answered."""

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case) -> None:
        statuses[exercise(case)] += 1

    run()


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_no_server_error_and_conforming_answers(
    apps: dict[str, Flask], service: str
) -> None:
    """Generated requests on every operation: no 5xx, every answer as the description says."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", apps[service])
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own endpoint; everything else is exercised
    assert {op.path for op in operations} >= {*SERVICE_PATHS[service], "/healthz", "/readyz"}
    seen: dict[str, Counter] = {}
    for operation in operations:
        statuses = seen.setdefault(operation.label, Counter())
        for strategy in strategies(operation):
            fuzz(strategy, statuses)
    # The examples were answered 200 and the generated junk was refused, not ignored. An
    # operation on one job can't be: no generated id names a job (test_job_answers_match_the_spec
    # runs them on real jobs).
    for label, statuses in seen.items():
        if "{job_id}" not in label:
            assert statuses[200] + statuses[202] >= 1, (label, statuses)
        if label.startswith("POST"):
            assert sum(n for status, n in statuses.items() if 400 <= status < 500), label
    print({label: dict(statuses) for label, statuses in seen.items()})
