"""Request and response bodies of the store routes: purchases made in the App Store or Google
Play (api/routes/store_purchases.py), the stores' notifications, and the studio's store
products (api/routes/studio_store_products.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.ticket_schemas import TicketRead

PRODUCT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,149}$"


class AppleStorePurchaseCreate(BaseModel):
    """What StoreKit 2 gave the app for a finished purchase."""

    model_config = ConfigDict(extra="forbid")

    signed_transaction: str = Field(
        min_length=20,
        max_length=20_000,
        description="Transaction.jwsRepresentation: the JWS Apple signed for this purchase",
    )


class GooglePlayPurchaseCreate(BaseModel):
    """What Google Play Billing gave the app for a finished purchase."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=PRODUCT_ID, description="Purchase.getProducts()[0]")
    purchase_token: str = Field(
        min_length=10, max_length=4096, description="Purchase.getPurchaseToken()"
    )
    package_name: str | None = Field(
        default=None,
        max_length=255,
        description="Purchase.getPackageName(); refused with store_app_mismatch if not ours",
    )


class StorePurchaseRead(BaseModel):
    """The ticket a store purchase bought."""

    store: str = Field(description="app_store or google_play")
    transaction_id: str = Field(description="Apple's transactionId, or Google's orderId")
    amount_minor: int = Field(description="The consumer price, in minor units of currency")
    currency: str = Field(description="ISO 4217")
    ticket: TicketRead


class StoreNotificationReceipt(BaseModel):
    notification_id: str
    type: str
    status: str = Field(description="handled | ignored | duplicate")


class StoreProductPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(
        pattern=PRODUCT_ID, description="The product id in App Store Connect / Play Console"
    )
    amount_minor: int = Field(
        ge=1, le=10**9, description="The price point's consumer price, in minor units"
    )
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])


class StoreProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    store: str
    territory: str
    product_id: str
    amount_minor: int
    currency: str
    updated_at: datetime


class StoreProductList(BaseModel):
    items: list[StoreProductRead]
