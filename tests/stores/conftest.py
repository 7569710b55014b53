"""Fixtures for store purchases: a test Apple PKI, test Google keys, the stores on loopback,
and settings that point the real client libraries at them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalog import store_products
from catalog.models import Title
from core.db import unit_of_work
from tests.conftest import Configure, configure
from tests.helpers import create_licensed_title, create_studio
from tests.stores import fake_stores
from tests.stores.fake_stores import AppleChain, FakeStores, Keys

__all__ = ["Configure", "configure"]


@dataclass
class Stores:
    fake: FakeStores
    url: str
    chain: AppleChain
    keys: Keys


@pytest.fixture(scope="session")
def _apple_chain() -> AppleChain:
    return AppleChain.make()


@pytest.fixture(scope="session")
def _keys() -> Keys:
    return Keys.make()


@pytest.fixture(scope="session")
def _server(_keys: Keys) -> Iterator[tuple[FakeStores, str]]:
    with fake_stores.running(_keys) as server:
        yield server


@pytest.fixture(scope="session")
def _files(
    tmp_path_factory: pytest.TempPathFactory,
    _apple_chain: AppleChain,
    _keys: Keys,
    _server: tuple[FakeStores, str],
) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("store-keys")
    root = folder / "AppleRootCA-test.cer"
    root.write_bytes(_apple_chain.root_der())
    p8, account = _keys.write(folder, f"{_server[1]}/token")
    return root, p8, account


@pytest.fixture
def stores(
    db: None,
    configure: Configure,
    _apple_chain: AppleChain,
    _keys: Keys,
    _server: tuple[FakeStores, str],
    _files: tuple[Path, Path, Path],
) -> Stores:
    fake, url = _server
    fake.reset()
    root, p8, account = _files
    configure(
        geo_fallback_country="US",
        apple_bundle_id=fake_stores.BUNDLE_ID,
        apple_app_apple_id=str(fake_stores.APP_APPLE_ID),
        apple_environment="Sandbox",
        apple_root_certificates=str(root),
        apple_online_checks="false",
        apple_api_issuer_id="57246542-96fe-1a63-e053-0824d011072a",
        apple_api_key_id="TESTKEY01",
        apple_api_private_key_file=str(p8),
        apple_api_base_url=url,
        apple_consumption_consent="true",
        google_play_package_name=fake_stores.PACKAGE_NAME,
        google_play_service_account_file=str(account),
        google_play_api_base_url=url + "/",
        google_pubsub_audience=fake_stores.PUBSUB_AUDIENCE,
        google_pubsub_service_account=fake_stores.PUBSUB_SENDER,
        google_pubsub_certs_url=f"{url}/oauth2/v1/certs",
    )
    return Stores(fake, url, _apple_chain, _keys)


@pytest.fixture
def film(stores: Stores) -> Title:
    """A title on sale in the US (12.99 USD) and Canada, sold in the US storefront of both
    stores at 12.99 USD and in Canada's App Store storefront at 15.99 CAD."""
    title = create_licensed_title(create_studio().id)
    with unit_of_work() as session:
        for store, country, product, price, currency in (
            ("app_store", "US", "film.the_film.us", 1299, "USD"),
            ("app_store", "CA", "film.the_film.ca", 1599, "CAD"),
            ("google_play", "US", "film.the_film", 1299, "USD"),
        ):
            store_products.put(
                session,
                title,
                store=store,
                territory=country,
                product_id=product,
                price_minor=price,
                currency=currency,
            )
    return title
