from tests.payments.conftest import configure

__all__ = ["configure"]
