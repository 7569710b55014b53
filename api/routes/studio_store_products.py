"""Studio store products: which App Store / Google Play product sells a title in each
territory, at which price point. Another studio's title answers 404, like a missing one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.contract import problems
from api.deps import CallerScope, DbSession, ReadDb, StudioUser
from api.store_schemas import StoreProductList, StoreProductPut, StoreProductRead
from catalog import service as catalog
from catalog import store_products
from catalog.models import StoreProduct

router = APIRouter(prefix="/v1/studio", tags=["studio store products"])


def _read(row: StoreProduct) -> StoreProductRead:
    return StoreProductRead(
        store=row.store,
        territory=row.territory,
        product_id=row.product_id,
        amount_minor=row.price_minor,
        currency=row.currency,
        updated_at=row.updated_at,
    )


@router.get(
    "/titles/{title_id}/store-products",
    operation_id="studio_store_products_list",
    summary="A title's store products and price points, per store and territory",
    response_model=StoreProductList,
    responses=problems("title_not_found"),
)
def list_store_products(
    session: ReadDb, _: StudioUser, scope: CallerScope, title_id: str
) -> StoreProductList:
    """The App Store and Google Play products that sell this title, per store and country."""
    title = catalog.studio_title(session, scope, title_id)
    return StoreProductList(items=[_read(r) for r in store_products.list_for_title(session, title)])


@router.put(
    "/titles/{title_id}/store-products/{store}/{country}",
    operation_id="studio_store_products_put",
    summary="Set the store product and price point that sell a title in one territory",
    response_model=StoreProductRead,
    responses=problems(
        "title_not_found",
        "store_product_taken",
        "store_price_invalid",
        "store_product_id_invalid",
        "store_unknown",
        "unknown_country",
        "unknown_currency",
    ),
)
def put_store_product(
    session: DbSession,
    _: StudioUser,
    scope: CallerScope,
    title_id: str,
    store: str,
    country: str,
    body: StoreProductPut,
) -> StoreProductRead:
    """Which store product sells the title in a country, at what price; a product id sells one title only."""
    title = catalog.studio_title(session, scope, title_id)
    row = store_products.put(
        session,
        title,
        store=store,
        territory=country,
        product_id=body.product_id,
        price_minor=body.amount_minor,
        currency=body.currency,
    )
    return _read(row)


@router.delete(
    "/titles/{title_id}/store-products/{store}/{country}",
    operation_id="studio_store_products_delete",
    summary="Stop selling a title through a store in one territory",
    status_code=204,
    responses=problems(
        "store_product_not_found", "title_not_found", "store_unknown", "unknown_country"
    ),
)
def delete_store_product(
    session: DbSession, _: StudioUser, scope: CallerScope, title_id: str, store: str, country: str
) -> Response:
    """The title is no longer sold through that store in that country."""
    title = catalog.studio_title(session, scope, title_id)
    store_products.remove(session, title, store=store, territory=country)
    return Response(status_code=204)
