"""Issue 19, finding 5: personal data reached `rejected_messages` in clear when it was a
number, in a list, or in a payload that is not JSON (both databases)."""

from __future__ import annotations

from sqlalchemy import select

from monitor.context import Context
from monitor.models import RejectedMessage

NAME, PHONE = "张三丰", "13812345678"


async def test_rejected_payloads_keep_no_personal_data_in_any_form(ctx: Context) -> None:
    payloads = [
        # A phone sent as a number, a name in a list, a name in an object.
        f'{{"petition_id": "X1", "petitioner_phone": {PHONE}, "petitioner_name": ["{NAME}"]}}',
        f'{{"petition_id": "X2", "petitioner_name": {{"given": "{NAME}"}}}}',
        # Key spelt with another case, a phone in free text.
        f'{{"petition_id": "X3", "Petitioner_Name": "{NAME}", "summary": "电话{PHONE}"}}',
        # Not JSON (a trailing comma): only size and hash are kept.
        f'{{"petition_id": "X4", "petitioner_name": "{NAME}", "petitioner_phone": "{PHONE}",}}',
        f"petitioner_name={NAME}&petitioner_phone={PHONE}",
    ]
    for n, payload in enumerate(payloads):
        await ctx.store.reject(
            channel="http",
            origin="/api/v1/petitions",
            reason="test",
            payload=payload.encode(),
            record_kind="petition",
            record_id=f"X{n}",
        )
    async with ctx.db.session() as session:
        rows = (await session.scalars(select(RejectedMessage).order_by(RejectedMessage.id))).all()
    assert len(rows) == len(payloads)
    for row, payload in zip(rows, payloads, strict=True):
        assert row.payload is not None
        assert NAME not in row.payload, row.payload
        assert PHONE not in row.payload, row.payload
        assert row.payload_size == len(payload.encode())
    assert '"petitioner_phone": "138****5678"' in rows[0].payload  # type: ignore[operator]
    assert rows[3].payload.startswith("(not JSON: ")  # type: ignore[union-attr]
    assert "sha256 " in rows[3].payload  # type: ignore[operator]
