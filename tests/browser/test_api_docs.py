"""The API documentation page renders in a real browser under the site's CSP, from our own files."""


def test_the_api_docs_render_without_csp_violations(page, live_server):
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith(live_server.url) and not request.url.startswith("data:")
            else None
        ),
    )

    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector("#swagger-ui .info .title")

    assert "Hybrid preferences API" in page.inner_text("#swagger-ui .info .title")
    # Operations are listed from the schema, which the page fetched itself.
    assert page.locator("#swagger-ui .opblock").count() > 10
    assert page.evaluate("window.__cspViolations") == []
    assert outside == []
