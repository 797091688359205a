import httpx


async def test_dashboard_page_and_assets_are_served(api: httpx.AsyncClient) -> None:
    r = await api.get("/")
    assert r.status_code == 200 and "<title>AgentOS</title>" in r.text
    for asset, kind in [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")]:
        assert f"/static/{asset}" in r.text
        r2 = await api.get(f"/static/{asset}")
        assert r2.status_code == 200 and r2.headers["content-type"].startswith(kind)
    assert (await api.get("/static/../app.py")).status_code == 404
    assert (await api.get("/static/index.html")).status_code == 404
