"""Store products: which App Store or Google Play product sells a title in a territory, and at
what price point (docs/stores.md).

Studios (or admins) set them as data, beside the licence windows' prices: a store purchase is
honoured only for a product id configured for the title in the storefront's country, at the
price configured there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.orm import Session

from catalog import repository
from catalog.models import StoreProduct, Title
from core.errors import Conflict, InvalidInput, NotFound
from core.geo import is_country, is_currency
from core.money import amount_step
from core.settings import Store

# Apple: letters, digits, "." and "_"; Google: lower-case letters, digits, "." and "_".
# One pattern admits both; each store refuses what it does not allow when the product is made.
PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$")
MAX_PRICE_MINOR = 10**9


def store_of(value: str) -> Store:
    try:
        return Store(value)
    except ValueError:
        raise InvalidInput(
            f"unknown store {value!r}; use {', '.join(s.value for s in Store)}",
            code="store_unknown",
        ) from None


def _territory(code: str) -> str:
    upper = code.strip().upper()
    if not is_country(upper):
        raise InvalidInput(
            f"{code!r} is not an ISO 3166-1 alpha-2 country code", code="unknown_country"
        )
    return upper


def list_for_title(session: Session, title: Title) -> Sequence[StoreProduct]:
    return repository.store_products_of(session, title.id)


def put(
    session: Session,
    title: Title,
    *,
    store: str,
    territory: str,
    product_id: str,
    price_minor: int,
    currency: str,
) -> StoreProduct:
    """Set the product and price point that sell ``title`` in one storefront of one store."""
    chosen = store_of(store)
    country = _territory(territory)
    cur = currency.strip().upper()
    if not is_currency(cur):
        raise InvalidInput(
            f"{currency!r} is not an ISO 4217 currency code", code="unknown_currency"
        )
    if not PRODUCT_ID.match(product_id):
        raise InvalidInput(
            "a product id is 1-150 characters of A-Z a-z 0-9 . _ - (as in the store's console)",
            code="store_product_id_invalid",
        )
    if not 0 < price_minor <= MAX_PRICE_MINOR or price_minor % amount_step(cur):
        raise InvalidInput(
            f"the price point must be a positive amount in {cur} minor units",
            code="store_price_invalid",
        )
    other = repository.find_store_product(session, chosen.value, product_id, country)
    if other is not None and other.title_id != title.id:
        # One product id in one storefront must mean one title, or a purchase would be
        # ambiguous.
        raise Conflict(
            f"{product_id} already sells another title in {country}", code="store_product_taken"
        )
    row = repository.get_store_product(session, title.id, chosen.value, country)
    if row is None:
        row = StoreProduct(title_id=title.id, store=chosen.value, territory=country)
        session.add(row)
    row.product_id = product_id
    row.price_minor = price_minor
    row.currency = cur
    session.flush()
    return row


def remove(session: Session, title: Title, *, store: str, territory: str) -> None:
    row = repository.get_store_product(
        session, title.id, store_of(store).value, _territory(territory)
    )
    if row is None:
        raise NotFound("no store product there", code="store_product_not_found")
    repository.delete_store_product(session, row)


def for_purchase(
    session: Session, store: Store, product_id: str, territory: str
) -> StoreProduct | None:
    """The configured product a store purchase names, in the storefront's country."""
    return repository.find_store_product(session, store.value, product_id, territory)
