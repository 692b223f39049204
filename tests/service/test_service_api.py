"""Access control of the API: nobody without a valid token or session (401), viewers only read (403), cookie
changes need the CSRF token (403), sign-ins are throttled per name and address (429), sessions expire and end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from service_site import PASSWORD, Site, bearer, sign_in
from sqlalchemy import update

from gate.store.schema import AdminSession, utcnow
from service.accounts import disable_account, list_tokens, revoke_token
from service.limits import SMALL_BODY_BYTES

ENDPOINTS = [
    ("GET", "/api/session"),
    ("POST", "/api/session/logout"),
    ("GET", "/api/people"),
    ("GET", "/api/people/E1"),
    ("POST", "/api/people"),
    ("DELETE", "/api/people/E1"),
    ("GET", "/api/people/E1/face"),
    ("POST", "/api/people/E1/deactivate"),
    ("POST", "/api/people/E1/reactivate"),
    ("GET", "/api/events/0123abcd/face"),
    ("GET", "/api/events"),
    ("GET", "/api/events.csv"),
    ("GET", "/api/gates"),
    ("GET", "/api/gates/front-door/snapshot"),
    ("GET", "/api/model"),
]


def _assertrefused(response, status: int) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message


def test_every_endpoint_needs_a_token_or_a_session(site: Site) -> None:
    for method, path in ENDPOINTS:
        _assertrefused(site.client.request(method, path), 401)
        _assertrefused(site.client.request(method, path, headers=bearer("not-a-token")), 401)
        _assertrefused(site.client.request(method, path, headers={"Authorization": "Basic YWRhOnB3"}), 401)
        site.client.cookies.set("facegate_session", "forged")
        _assertrefused(site.client.request(method, path), 401)
        site.client.cookies.clear()


def test_every_endpoint_refuses_a_revoked_token(site: Site) -> None:
    assert site.client.get("/api/people", headers=bearer(site.viewer_token)).status_code == 200
    revoke_token(site.database, "wall")
    for method, path in ENDPOINTS:
        _assertrefused(site.client.request(method, path, headers=bearer(site.viewer_token)), 401)


def test_every_endpoint_refuses_an_expired_session(site: Site) -> None:
    sign_in(site)
    assert site.client.get("/api/people").status_code == 200
    with site.database.session() as session:
        session.execute(update(AdminSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    for method, path in ENDPOINTS:
        _assertrefused(site.client.request(method, path), 401)


def test_a_disabled_account_loses_its_session_and_cannotsign_in(site: Site) -> None:
    sign_in(site)
    disable_account(site.database, "ada")
    _assertrefused(site.client.get("/api/people"), 401)
    _assertrefused(site.client.post("/api/session", json={"name": "ada", "password": PASSWORD}), 401)


def test_viewer_reads_but_may_not_enrol_or_remove(site: Site) -> None:
    for auth in (bearer(site.viewer_token), None):
        if auth is None:
            csrf = sign_in(site, "vic")
            auth = {"X-CSRF-Token": csrf}
        assert site.client.get("/api/people", headers=auth).status_code == 200
        assert site.client.get("/api/events", headers=auth).status_code == 200
        photo = {"photos": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}
        _assertrefused(site.client.post("/api/people", headers=auth, data={"employee_id": "E1"}, files=photo), 403)
        _assertrefused(site.client.delete("/api/people/E1", headers=auth), 403)


def test_admin_token_may_remove_and_an_unknown_person_is_404(site: Site) -> None:
    response = site.client.delete("/api/people/NOBODY", headers=bearer(site.admin_token))
    _assertrefused(response, 404)
    assert "no person" in response.json()["error"]
    assert [t.last_used_at is not None for t in list_tokens(site.database)] == [True, False]  # door-admin, wall


def test_session_cookie_is_httponly_strict_and_expires(site: Site) -> None:
    response = site.client.post("/api/session", json={"name": "ada", "password": PASSWORD})
    cookies = [value for key, value in response.headers.multi_items() if key == "set-cookie"]
    session = next(c for c in cookies if c.startswith("facegate_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Max-Age=28800" in session
    assert response.json()["name"] == "ada" and response.json()["role"] == "admin"
    assert site.client.get("/api/session").json() == {"name": "ada", "role": "admin", "kind": "session"}


def test_cookie_changes_need_the_csrf_token(site: Site) -> None:
    csrf = sign_in(site)
    photo = {"photos": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")}
    _assertrefused(site.client.post("/api/people", data={"employee_id": "E1"}, files=photo), 403)
    _assertrefused(site.client.delete("/api/people/E1"), 403)
    _assertrefused(site.client.delete("/api/people/E1", headers={"X-CSRF-Token": "guessed"}), 403)
    _assertrefused(site.client.delete("/api/people/E1", headers={"X-CSRF-Token": csrf}), 404)  # past the guard
    _assertrefused(site.client.post("/api/session/logout"), 403)


def test_sign_out_ends_the_session(site: Site) -> None:
    csrf = sign_in(site)
    assert site.client.post("/api/session/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    _assertrefused(site.client.get("/api/people"), 401)


def test_wrong_password_is_401_and_the_sixth_try_of_a_name_from_one_address_is_429(site: Site) -> None:
    for _ in range(5):
        _assertrefused(site.client.post("/api/session", json={"name": "ada", "password": "wrong one"}), 401)
    response = site.client.post("/api/session", json={"name": "ada", "password": PASSWORD})
    _assertrefused(response, 429)
    assert int(response.headers["Retry-After"]) >= 1 and "try again in" in response.json()["error"]


def test_other_names_from_that_address_stillsign_in(site: Site) -> None:
    for _ in range(6):
        site.client.post("/api/session", json={"name": "ada", "password": "wrong one"})
    sign_in(site, "vic")


@pytest.mark.parametrize("body", [{}, {"name": "ada"}, {"name": "", "password": "x"}])
def test_a_malformed_sign_in_is_422_in_one_line(site: Site, body: dict) -> None:
    _assertrefused(site.client.post("/api/session", json=body), 422)


def test_rights_are_checked_before_an_upload_is_read(site: Site) -> None:
    garbage = {"Content-Type": "multipart/form-data; boundary=x", **bearer(site.viewer_token)}
    _assertrefused(site.client.post("/api/people", content=b"--x\r\nnot a multipart body", headers=garbage), 403)
    del garbage["Authorization"]
    _assertrefused(site.client.post("/api/people", content=b"--x\r\nnot a multipart body", headers=garbage), 401)


def test_a_broken_upload_and_an_unknown_route_are_json_errors_too(site: Site) -> None:
    garbage = {"Content-Type": "multipart/form-data; boundary=x", **bearer(site.admin_token)}
    _assertrefused(site.client.post("/api/people", content=b"--x\r\nnot a multipart body", headers=garbage), 400)
    _assertrefused(site.client.get("/api/nothing-here", headers=bearer(site.admin_token)), 404)
    _assertrefused(site.client.put("/api/people", headers=bearer(site.admin_token)), 405)


def test_a_sign_in_body_over_the_small_limit_is_413_declared_or_chunked(site: Site) -> None:
    padded = {"name": "ada", "password": PASSWORD, "padding": "x" * SMALL_BODY_BYTES}
    _assertrefused(site.client.post("/api/session", json=padded), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"name": "ada", "password": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    response = site.client.post("/api/session", content=chunks(), headers={"Content-Type": "application/json"})
    _assertrefused(response, 413)
    assert "8192 bytes" in response.json()["error"]
    sign_in(site)  # a body within the limit signs in


def test_an_upload_streamed_past_max_upload_mb_is_413(site: Site) -> None:
    limit = int((20 + 1) * 2**20)

    def chunks() -> Iterator[bytes]:
        yield b'--x\r\nContent-Disposition: form-data; name="photos"; filename="a.png"\r\n'
        yield b"Content-Type: image/png\r\n\r\n"
        for _ in range(limit // 2**20 + 2):
            yield bytes(2**20)

    headers = {"Content-Type": "multipart/form-data; boundary=x", **bearer(site.admin_token)}
    response = site.client.post("/api/people", content=chunks(), headers=headers)
    _assertrefused(response, 413)
    assert "max_upload_mb" in response.json()["error"]
