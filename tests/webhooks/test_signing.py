import pytest

from apps.webhooks.signing import signature_header, verify

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast

SECRET = "s3cret"
BODY = b'{"type":"visit.started"}'


def test_a_signature_verifies_only_for_its_body_secret_and_time():
    header = signature_header(SECRET, BODY, timestamp=1_000_000)
    assert verify(SECRET, header, BODY, now=1_000_010)
    assert not verify(SECRET, header, BODY + b" ", now=1_000_010)
    assert not verify("other", header, BODY, now=1_000_010)
    assert not verify(SECRET, header, BODY, now=1_000_000 + 301)  # a replay, too late
    assert not verify(SECRET, "t=1000000", BODY, now=1_000_000)
    assert not verify(SECRET, "garbage", BODY, now=1_000_000)
