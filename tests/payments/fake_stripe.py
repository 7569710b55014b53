"""A small Stripe-compatible HTTP server for tests, so the real ``stripe`` SDK is exercised
over real HTTP on loopback (form-encoded bodies, Bearer keys, Idempotency-Key replay).

It implements what Pocket Cinema calls: Customers, PaymentIntents (create, retrieve,
confirm), EphemeralKeys, Refunds (create, list), Disputes (update with evidence) and
BalanceTransactions (list), and it can build and sign webhook events the way Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_pocketcinema_fake"
PUBLISHABLE_KEY = "pk_test_pocketcinema_fake"
WEBHOOK_SECRET = "whsec_test_pocketcinema_fake"


def parse_form(body: str) -> dict[str, Any]:
    """Decode Stripe's bracket notation: ``metadata[a]=1&types[0]=card`` -> nested dicts."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node: Any = result
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            if following is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    converted: dict[str, Any] = _lists(result)
    return converted


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.code = status, type_, message, code


class FakeStripe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.balance: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[tuple[str, str], tuple[dict[str, Any], int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_next: int = 0  # answer the next N requests with a 500
        self.slow: dict[str, float] = {}  # path -> seconds: hold callers' transactions open

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.counter):06d}{uuid.uuid4().hex[:8]}"

    # -- dispatch -------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, Any], params: dict[str, Any], headers: Any
    ) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", "Invalid API Key provided")
        if path in self.slow:
            time.sleep(self.slow[path])
        # Stripe serialises requests that share an idempotency key and replays the first
        # answer for the same parameters; different parameters are an error.
        with self.lock:
            self.requests.append((method, path))
            if self.fail_next:
                self.fail_next -= 1
                return 500, _error("api_error", "simulated outage")
            key = headers.get("Idempotency-Key")
            if method == "POST" and key:
                stored = self.idempotent.get((path, key))
                if stored is not None:
                    if stored[0] != params:
                        return 400, _error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                        )
                    return stored[1], stored[2]
            try:
                status, body = 200, self._route(method, path, query, params, headers)
            except StripeError as exc:
                status, body = exc.status, _error(exc.type, exc.message, exc.code)
            if method == "POST" and key and status < 500:
                self.idempotent[(path, key)] = (params, status, body)
            return status, body

    def _route(
        self, method: str, path: str, query: dict[str, Any], params: dict[str, Any], headers: Any
    ) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "customers"]:
                return self._create_customer(params)
            case "POST", ["v1", "payment_intents"]:
                return self._create_intent(params)
            case "GET", ["v1", "payment_intents", intent_id]:
                return self._intent(intent_id)
            case "POST", ["v1", "payment_intents", intent_id, "confirm"]:
                return self._confirm(intent_id, params)
            case "POST", ["v1", "ephemeral_keys"]:
                if not headers.get("Stripe-Version"):
                    raise StripeError(
                        400, "invalid_request_error", "Stripe-Version header is required"
                    )
                customer = params.get("customer")
                if customer not in self.customers:
                    raise StripeError(404, "invalid_request_error", "No such customer")
                return {
                    "id": self._id("ephkey"),
                    "object": "ephemeral_key",
                    "secret": "ek_test_" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest(),
                    "associated_objects": [{"type": "customer", "id": customer}],
                    "expires": int(time.time()) + 3600,
                }
            case "POST", ["v1", "refunds"]:
                return self._create_refund(params)
            case "GET", ["v1", "refunds"]:
                data = [r for r in self.refunds.values() if r["charge"] == query.get("charge")]
                return {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}
            case "GET", ["v1", "balance_transactions"]:
                return self._list_balance(query)
            case "POST", ["v1", "disputes", dispute_id]:
                return self._update_dispute(dispute_id, params)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL {path}")

    def _list_balance(self, query: dict[str, Any]) -> dict[str, Any]:
        """By ``source``, or by ``created[gte]``/``created[lt]`` with ``starting_after``
        pagination and ``expand[]=data.source``, as Stripe's list API does."""
        if "source" in query:
            data = [b for b in self.balance.values() if b["source"] == query["source"]]
        else:
            created = query.get("created") or {}
            gte, lt = int(created.get("gte", 0)), int(created.get("lt", 2**62))
            data = [b for b in self.balance.values() if gte <= b["created"] < lt]
            data.sort(key=lambda b: (-b["created"], b["id"]))  # newest first, like Stripe
            after = query.get("starting_after")
            if after:
                ids = [b["id"] for b in data]
                data = data[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit", 10))
        page, more = data[:limit], len(data) > limit
        if "data.source" in (query.get("expand") or []):
            page = [b | {"source": self._source(b["source"])} for b in page]
        return {
            "object": "list",
            "data": page,
            "has_more": more,
            "url": "/v1/balance_transactions",
        }

    def _source(self, source_id: str) -> Any:
        return self.charges.get(source_id) or self.refunds.get(source_id) or source_id

    # -- objects --------------------------------------------------------------------------

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = int(params.get("amount", 0))
        if amount < 1:
            raise StripeError(400, "invalid_request_error", "amount must be positive")
        if params.get("customer") and params["customer"] not in self.customers:
            raise StripeError(404, "invalid_request_error", "No such customer")
        intent_id = self._id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": params["currency"],
            "customer": params.get("customer"),
            "metadata": params.get("metadata", {}),
            "description": params.get("description"),
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{hashlib.sha256(intent_id.encode()).hexdigest()[:16]}",
            "automatic_payment_methods": params.get("automatic_payment_methods"),
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "payment_method_options": params.get("payment_method_options", {}),
            "latest_charge": None,
            "created": int(time.time()),
            "livemode": False,
        }
        self.intents[intent_id] = intent
        return intent

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise StripeError(404, "invalid_request_error", f"No such payment_intent: {intent_id}")
        return intent

    def _confirm(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._intent(intent_id)
        if params.get("payment_method") == "pm_card_chargeDeclined":
            intent["last_payment_error"] = {
                "code": "card_declined",
                "decline_code": "generic_decline",
            }
            return intent
        charge_id = self._id("ch")
        fee = (intent["amount"] * 29 + 500) // 1000 + 30
        txn = {
            "id": self._id("txn"),
            "object": "balance_transaction",
            "amount": intent["amount"],
            "currency": "usd",  # settles in USD whatever the charge currency
            "fee": fee,
            "net": intent["amount"] - fee,
            "source": charge_id,
            "type": "charge",
            "created": int(time.time()),
        }
        self.balance[txn["id"]] = txn
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "refunded": False,
            "balance_transaction": txn["id"],
        }
        intent |= {"status": "succeeded", "amount_received": intent["amount"]}
        intent["latest_charge"] = charge_id
        return intent

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._intent(params["payment_intent"])
        charge = self.charges.get(intent.get("latest_charge") or "")
        if charge is None:
            raise StripeError(400, "invalid_request_error", "This PaymentIntent has no charge")
        amount = int(params.get("amount", charge["amount"] - charge["amount_refunded"]))
        if amount < 1 or amount > charge["amount"] - charge["amount_refunded"]:
            raise StripeError(400, "invalid_request_error", "Refund amount is invalid")
        refund = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        txn_id = self._id("txn")
        self.balance[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": -amount,
            "currency": "usd",
            "fee": 0,
            "net": -amount,
            "source": refund["id"],
            "type": "refund",
            "created": int(time.time()),
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return refund

    def _update_dispute(self, dispute_id: str, params: dict[str, Any]) -> dict[str, Any]:
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise StripeError(404, "invalid_request_error", f"No such dispute: {dispute_id}")
        if dispute["status"] not in ("needs_response", "warning_needs_response"):
            raise StripeError(
                400, "invalid_request_error", "This dispute is no longer accepting evidence"
            )
        dispute["evidence"] = dispute["evidence"] | dict(params.get("evidence") or {})
        if params.get("submit") == "true":
            dispute["status"] = "under_review"
        return dispute

    # -- helpers for tests ----------------------------------------------------------------

    def open_dispute(self, intent_id: str) -> dict[str, Any]:
        """The viewer's bank disputes the charge of ``intent_id`` (as Stripe would create it)."""
        with self.lock:
            intent = self._intent(intent_id)
            dispute = {
                "id": self._id("dp"),
                "object": "dispute",
                "amount": intent["amount"],
                "currency": intent["currency"],
                "charge": intent["latest_charge"],
                "payment_intent": intent_id,
                "reason": "fraudulent",
                "status": "needs_response",
                "evidence": {},
            }
            self.disputes[dispute["id"]] = dispute
            return dict(dispute)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))

    def event(self, type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
        body = {
            "id": event_id or self._id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "type": type_,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
        return json.dumps(body).encode()


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme: ``t=<unix>,v1=hex(HMAC_SHA256(secret, "<t>.<payload>"))``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _error(type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            query = parse_form(url.query)
            status, answer = fake.handle(
                self.command, url.path, query, parse_form(body), self.headers
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running() -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
