from agentos.store import Store


async def test_ping(store: Store) -> None:
    await store.ping()
