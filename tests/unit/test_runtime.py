"""The composition root and the generic port proxy: one adapter replaced by keyword, services
built once on first use, and a spy that counts and fails any port's operations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from switchboard.adapters.sqlite_store import SqliteStore
from switchboard.errors import DependencyUnavailable
from switchboard.ports import DocumentStore
from switchboard.runtime import Adapters, Runtime
from tests.conftest import make_runtime, make_settings
from tests.fakes import FakeIdentityProvider, store_down
from tests.proxies import spy, spy_of


async def test_one_adapter_is_replaced_by_keyword_and_the_rest_kept(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    fake = FakeIdentityProvider()
    other = Runtime(rt.settings, dataclasses.replace(rt.adapters, identity_provider=fake))
    assert other.adapters.identity_provider is fake
    assert other.adapters.store is rt.adapters.store
    assert other.adapters.authenticator is rt.adapters.authenticator
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.adapters.store = rt.adapters.store  # type: ignore[misc]
    await rt.close()


async def test_services_are_built_on_first_use_and_once(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    assert "identity" not in vars(rt)
    assert rt.identity is rt.identity
    assert rt.health is rt.health
    await rt.close()


def test_adapters_from_settings_follow_the_settings(tmp_path: Path) -> None:
    adapters = Adapters.from_settings(make_settings(tmp_path))
    assert isinstance(adapters.store, SqliteStore)
    assert adapters.dev_issuer is not None
    jwt = Adapters.from_settings(
        make_settings(tmp_path, AUTH_MODE="jwt", AUTH_ISSUER="https://i", AUTH_AUDIENCE="a")
    )
    assert jwt.dev_issuer is None


async def test_spy_counts_each_operation_but_not_health_probes(tmp_path: Path) -> None:
    store: DocumentStore = spy(SqliteStore(tmp_path / "s.sqlite"))
    await store.create("users", {"id": "a", "pk": "a"})
    await store.read("users", "a", "a")
    await store.read("users", "b", "b")
    await store.ping()
    assert spy_of(store).calls == {"create": 1, "read": 2}
    await store.close()


async def test_spy_fails_an_operation_by_name_or_by_name_and_container(tmp_path: Path) -> None:
    inner = SqliteStore(tmp_path / "s.sqlite")
    store = spy(inner)
    spy_of(store).fail["create:users"] = store_down()
    with pytest.raises(DependencyUnavailable):
        await store.create("users", {"id": "a", "pk": "a"})
    await store.create("identities", {"id": "a", "pk": "a"})  # another container: untouched
    assert await inner.read("users", "a", "a") is None
    spy_of(store).fail["read"] = store_down()
    with pytest.raises(DependencyUnavailable):
        await store.read("identities", "a", "a")
    await store.close()


def test_spy_of_refuses_a_port_that_is_not_spied_on() -> None:
    with pytest.raises(AssertionError):
        spy_of(FakeIdentityProvider())
