"""One mediation from request to concluded agreement, through every part, as the people in it
would go through it; every response on the way is checked for what must never leak.

The applicant and the respondent each see the other's name, never their phone (neither the
digits nor the masked form); nobody receives a full phone number; the minutes reach the
mediator and the admins above, never a party.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.clock import clock, now
from backend.core.security import mask_phone
from backend.wechat.emulator import EmulatorServer
from tests.conftest import Login, bearer
from tests.factories.volunteers import centre_of

APPLICANT_PHONE = "13712340001"
RESPONDENT_PHONE = "13912340002"
MINUTES = "第一次调解：双方同意楼上晚十点后停止施工（保密笔录 7f3a）"
GRID = "gz.tianhe.shipai.gangding.g05"


class Recorder:
    """Keeps every answer of the app, with the caller it was for."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, httpx.Response]] = []

    def add(self, who: str, response: httpx.Response) -> httpx.Response:
        self.seen.append((who, response))
        return response


async def _bind_phone(
    client: httpx.AsyncClient, emulator: EmulatorServer, openid: str, phone: str, headers: dict
) -> None:
    code = await emulator.phone_code(openid, phone)
    bound = await client.post("/v1/me/phone", json={"code": code}, headers=headers)
    assert bound.status_code == 200, bound.text


@pytest.mark.usefixtures("demo")
async def test_a_mediation_from_request_to_agreement_never_shows_one_side_to_the_other(
    client: httpx.AsyncClient, login: Login, emulator: EmulatorServer, session: AsyncSession
) -> None:
    record = Recorder()
    applicant = bearer(await login("demo-resident"))
    respondent = bearer(await login("demo-resident-2"))
    # Phones are bound before the clock is frozen (the WeChat token cache follows the clock).
    await _bind_phone(client, emulator, "demo-resident", APPLICANT_PHONE, applicant)
    await _bind_phone(client, emulator, "demo-resident-2", RESPONDENT_PHONE, respondent)
    start = now().replace(microsecond=0)
    clock.freeze(start)
    mediator = bearer(await login("demo-mediator"))
    admin = bearer(await login("demo-district-admin"))
    lat, lng = await centre_of(session, GRID)

    # The applicant asks; the answer carries the respondent's invitation code, once.
    created = record.add(
        "applicant",
        await client.post(
            "/v1/mediations",
            json={
                "dispute_type": "neighbours",
                "description": "楼上邻居深夜装修，电钻声持续到凌晨，多次沟通无果",
                "claim": "请求对方晚上十点后停止施工",
                "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
                "applicant_name": "陈明",
                "respondents": [{"name": "黄阿珍", "phone": RESPONDENT_PHONE}],
            },
            headers={**applicant, "Idempotency-Key": f"journey-{uuid.uuid4().hex}"},
        ),
    )
    assert created.status_code == 201, created.text
    mediation = created.json()
    base = f"/v1/mediations/{mediation['id']}"
    [invitation] = mediation["invitations"]
    assert mediation["state"] == "awaiting_consent"

    # The respondent reads the summary and consents: the demo mediator takes it at once.
    summary = record.add(
        "respondent",
        await client.get(f"/v1/mediation-invitations/{invitation['code']}", headers=respondent),
    )
    assert summary.status_code == 200 and summary.json()["applicant_name"] == "陈明"
    accepted = record.add(
        "respondent",
        await client.post(
            f"/v1/mediation-invitations/{invitation['code']}/accept", headers=respondent
        ),
    )
    assert accepted.status_code == 200, accepted.text
    seen = record.add("applicant", await client.get(base, headers=applicant)).json()
    assert seen["state"] == "assigned"
    assert seen["mediator"]["display_name"] == "周叔"

    # The mediator finds it in their queue and schedules a session at the community office.
    queue = record.add("mediator", await client.get("/v1/mediator/mediations", headers=mediator))
    assert [item["id"] for item in queue.json()["items"]] == [mediation["id"]]
    meeting = record.add(
        "mediator",
        await client.post(
            f"{base}/sessions",
            json={
                "starts_at": (start + timedelta(days=1)).isoformat(),
                "mode": "in_person",
                "place": "岗顶社区人民调解室",
            },
            headers=mediator,
        ),
    )
    assert meeting.status_code == 201, meeting.text
    clock.freeze(start + timedelta(days=1, hours=2))
    # A day later everyone has logged in again (access tokens last minutes).
    applicant = bearer(await login("demo-resident"))
    respondent = bearer(await login("demo-resident-2"))
    mediator = bearer(await login("demo-mediator"))
    admin = bearer(await login("demo-district-admin"))
    parties = {p["role"]: p["id"] for p in seen["parties"]}
    held = record.add(
        "mediator",
        await client.post(
            f"{base}/sessions/{meeting.json()['id']}/record",
            json={"attended": list(parties.values()), "minutes": MINUTES},
            headers=mediator,
        ),
    )
    assert held.status_code == 200, held.text

    # The agreement: proposed by the mediator, confirmed by each party in the app.
    proposed = record.add(
        "mediator",
        await client.put(
            f"{base}/agreement",
            json={
                "text": "乙方承诺每日二十二时至次日八时不进行装修施工，甲方不再追究。",
                "judicial_confirmation": False,
            },
            headers=mediator,
        ),
    )
    assert proposed.status_code == 200, proposed.text
    version = proposed.json()["agreement"]["version"]
    for who, headers in (("applicant", applicant), ("respondent", respondent)):
        confirmed = record.add(
            who,
            await client.post(
                f"{base}/agreement/confirm", json={"version": version}, headers=headers
            ),
        )
        assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "concluded"

    # Everyone who may look sees the end; each party reads everything they are shown.
    for who, headers in (
        ("applicant", applicant),
        ("respondent", respondent),
        ("mediator", mediator),
        ("admin", admin),
    ):
        for path in (base, f"{base}/sessions", f"{base}/outcome"):
            answer = record.add(who, await client.get(path, headers=headers))
            assert answer.status_code == 200, (who, path, answer.text)
    for who, headers in (("applicant", applicant), ("respondent", respondent)):
        record.add(who, await client.get("/v1/me/mediations", headers=headers))
    final = record.add("applicant", await client.get(base, headers=applicant)).json()
    assert final["state"] == "concluded" and final["ended_at"] is not None

    # The figures count it, in aggregate only.
    stats = record.add(
        "admin",
        await client.get(
            "/v1/staff/stats",
            params={
                "region": "gz.tianhe.shipai",
                "from": start.isoformat(),
                "to": (start + timedelta(days=2)).isoformat(),
            },
            headers=admin,
        ),
    )
    figures = stats.json()["region"]["mediation"]
    assert figures["cases"] == 1
    assert figures["success_rate"]["numerator"] == figures["success_rate"]["denominator"] == 1

    # What must never leak, over every answer above.
    other_side = {
        "applicant": (RESPONDENT_PHONE, mask_phone(RESPONDENT_PHONE)),
        "respondent": (APPLICANT_PHONE, mask_phone(APPLICANT_PHONE)),
    }
    for who, answer in record.seen:
        text = answer.text
        assert APPLICANT_PHONE not in text and RESPONDENT_PHONE not in text, (who, answer.url)
        for secret in other_side.get(who, ()):
            assert secret not in text, (who, answer.url)
        if who in other_side:
            assert MINUTES not in text, (who, answer.url)
    minutes_seen = {
        who
        for who, answer in record.seen
        if answer.url.path.endswith("/sessions") and MINUTES in answer.text
    }
    assert minutes_seen == {"mediator", "admin"}
