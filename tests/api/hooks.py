"""Checks that Schemathesis runs beside its own, against the function served
by `cargo lambda watch` (tests/integration/e2e.rs): what the README's status
table promises beyond what docs/openapi.yaml can say."""

import schemathesis


def header(headers, name):
    """A header's first value, whatever the case of its name."""
    for key, values in headers.items():
        if key.lower() == name.lower():
            return values[0] if isinstance(values, list) else values
    return ""


@schemathesis.check
def nothing_is_deleted_without_credentials(ctx, response, case):
    """A DELETE that carried no Authorization header is refused."""
    if case.method.upper() == "DELETE" and response.status_code < 300:
        if not header(response.request.headers, "Authorization").strip():
            raise AssertionError(f"DELETE without credentials answered {response.status_code}")


@schemathesis.check
def every_answer_is_json_with_a_request_id(ctx, response, case):
    """Every answer, documented or not (405 for other methods), has
    Content-Type application/json and X-Request-Id."""
    if not header(response.headers, "Content-Type").startswith("application/json"):
        raise AssertionError(f"{response.status_code} without Content-Type application/json")
    if not header(response.headers, "X-Request-Id"):
        raise AssertionError(f"{response.status_code} without X-Request-Id")
