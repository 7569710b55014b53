from tests.payments.conftest import _stripe_server, _viewer_in_us, configure, stripe_fake

__all__ = ["_stripe_server", "_viewer_in_us", "configure", "stripe_fake"]
