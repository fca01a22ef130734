import pytest

from tests.clients.helpers import ApiPeer


@pytest.fixture
def peer():
    api = ApiPeer().start()
    yield api
    api.stop()
