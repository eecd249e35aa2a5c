from controlkit import Api, service


async def test_smoke(api: Api) -> None:
    status, body = await api.call("GET", "/healthz")
    assert status == 200
    status, body = await api.apply(service("reviews"))
    print(body)
    assert status == 200
