"""The API's own description, /openapi.json of the real app: every answer has a declared shape, every route that
needs sign-in says so (and refuses the anonymous, as it says), each route sits under one tag; and user errors
reach their status by their class: an unknown person 404, a value the server cannot use 400."""

from __future__ import annotations

import pytest
from service_site import Site, bearer

from service.auth import CSRF_HEADER, SESSION_COOKIE

OPEN_TO_ALL = {("post", "/api/session")}  # signing in; every other operation needs a token or a session
SIGNED_IN = [{"token": []}, {"session": []}]  # either will do
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(site: Site) -> dict:
    response = site.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    found = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(found) >= 15
    return found


def _component(schema: dict, reference: str) -> dict:
    assert reference.startswith("#/components/schemas/"), reference
    return schema["components"]["schemas"][reference.rsplit("/", 1)[1]]


def test_every_json_answer_has_a_named_shape_and_every_other_its_media_type(schema: dict) -> None:
    for method, path, operation in _operations(schema):
        success = operation["responses"].get("200") or operation["responses"].get("201")
        assert success and success.get("content"), (method, path)
        json_content = success["content"].get("application/json")
        if json_content is None:  # a face (image/webp), a gate's snapshot (image/jpeg) or the events as CSV
            assert set(success["content"]) <= {"image/webp", "image/jpeg", "text/csv"}, (method, path)
            continue
        shape = _component(schema, json_content["schema"].get("$ref", ""))  # not a bare object
        assert shape.get("properties") and shape.get("required"), (method, path, shape)


def test_every_refusal_is_documented_as_the_error_the_server_sends(schema: dict) -> None:
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's 422 is answered as an error
    for method, path, operation in _operations(schema):
        refusals = {status: answer for status, answer in operation["responses"].items() if status.startswith("4")}
        assert "401" in refusals or (method, path) in OPEN_TO_ALL, (method, path)
        for status, answer in refusals.items():
            shape = _component(schema, answer["content"]["application/json"]["schema"]["$ref"])
            assert "error" in shape["required"], (method, path, status)


def test_the_security_schemes_are_the_bearer_token_and_the_session_cookie(schema: dict) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["token"]["type"] == "http" and schemes["token"]["scheme"] == "bearer"
    assert (schemes["session"]["type"], schemes["session"]["in"]) == ("apiKey", "cookie")
    assert schemes["session"]["name"] == SESSION_COOKIE


def test_every_operation_but_sign_in_declares_the_sign_in_it_needs(schema: dict) -> None:
    for method, path, operation in _operations(schema):
        if (method, path) in OPEN_TO_ALL:
            assert "security" not in operation, (method, path)  # no global security: open to all
        else:
            assert operation.get("security") == SIGNED_IN, (method, path)


def test_what_the_schema_declares_is_what_the_server_does_to_the_anonymous(site: Site, schema: dict) -> None:
    for method, path, operation in _operations(schema):
        url = path.replace("{employee_id}", "E1").replace("{event_uid}", "0123abcd").replace("{gate_id}", "front")
        status = site.client.request(method.upper(), url).status_code
        assert (status == 401) == ("security" in operation), (method, path, status)


def test_every_change_offers_the_csrf_header_a_session_needs(schema: dict) -> None:
    for method, path, operation in _operations(schema):
        if method != "get" and (method, path) not in OPEN_TO_ALL:
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert headers == [CSRF_HEADER], (method, path)


def test_each_operation_sits_under_one_declared_tag(schema: dict) -> None:
    declared = [tag["name"] for tag in schema["tags"]]
    assert len(set(declared)) == len(declared)
    used = set()
    for method, path, operation in _operations(schema):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in declared, (method, path, operation["tags"])
        used.add(operation["tags"][0])
    assert used == set(declared)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/people/NOBODY"),
        ("GET", "/api/people/NOBODY/face"),
        ("DELETE", "/api/people/NOBODY"),
        ("POST", "/api/people/NOBODY/deactivate"),
        ("POST", "/api/people/NOBODY/reactivate"),
    ],
)
def test_an_unknown_person_is_404_in_the_apis_terms(site: Site, method: str, path: str) -> None:
    response = site.client.request(method, path, headers=bearer(site.admin_token))
    assert response.status_code == 404
    assert response.json() == {"error": "no person with employee id 'NOBODY'"}  # no command-line advice


def test_a_value_the_server_cannot_use_is_400_and_an_id_the_rule_refuses_422(site: Site) -> None:
    viewer = bearer(site.viewer_token)
    response = site.client.get("/api/events", params={"until": "next tuesday"}, headers=viewer)
    assert response.status_code == 400 and response.json()["error"].startswith("until 'next tuesday'")
    response = site.client.get("/api/people/E%E2%80%8B1", headers=viewer)  # a zero-width space inside
    assert response.status_code == 422 and "employee id" in response.json()["error"]
