import pytest
from django.test import AsyncClient

pytestmark = [pytest.mark.django_db(transaction=True)]

@pytest.fixture
def headers(make_user, make_key) -> dict:
    return {"Authorization": f"Bearer {make_key(make_user())}"}

@pytest.fixture
def aclient():
    return AsyncClient()

async def test_exp(headers, kobold_settings):
    response = await AsyncClient().post("/api/simple-chat/", {"message": "Say hello."},
        content_type="application/json", headers=headers)
    assert response.status_code == 200

async def test_exp2(kobold_settings, headers):
    response = await AsyncClient().post("/api/simple-chat/", {"message": "Say hello."},
        content_type="application/json", headers=headers)
    assert response.status_code == 200
