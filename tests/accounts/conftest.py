"""Fixtures shared by the account tests: an RSA signer and a JWKS server on loopback."""

from tests.accounts.test_sign_in_with_providers import jwks_server, signer

__all__ = ["jwks_server", "signer"]
