"""The intake channels' names: MQTT topics and HTTP paths (interfaces §3), and who may use them."""

from __future__ import annotations

from dataclasses import dataclass

#: Topic segment / URL path segment -> record kind.
SEGMENT_KIND: dict[str, str] = {"wages": "wage", "petitions": "petition", "reports": "report"}
KIND_SEGMENT: dict[str, str] = {kind: segment for segment, kind in SEGMENT_KIND.items()}

#: Record kind -> the account kind that may send it.
SENDER_KIND: dict[str, str] = {"wage": "point", "petition": "source", "report": "informant"}

#: Record kind -> the payload field that must name the sender (petitions carry no
#: sender field; an optional `source_id` is checked when present).
SENDER_FIELD: dict[str, str] = {
    "wage": "point_id",
    "petition": "source_id",
    "report": "informant_id",
}

#: Words for people reading an error notice or a 403 (the API speaks English).
KIND_LABEL: dict[str, str] = {
    "wage": "wage reports",
    "petition": "petitions",
    "report": "informant reports",
}


@dataclass(frozen=True)
class InputTopic:
    kind: str
    sender: str


def input_filters(prefix: str, kinds: tuple[str, ...] | None = None) -> list[str]:
    """The topic filters the daemon reads: one level below each input kind (of `kinds`)."""
    return [
        f"{prefix}/{segment}/+"
        for segment, kind in SEGMENT_KIND.items()
        if kinds is None or kind in kinds
    ]


def shared(filter_: str, group: str) -> str:
    """An MQTT 5 shared subscription (`$share/<group>/<filter>`); plain when group is empty."""
    return f"$share/{group}/{filter_}" if group else filter_


def parse_input_topic(prefix: str, topic: str) -> InputTopic | None:
    """`labormon/v1/reports/inf-7` -> InputTopic("report", "inf-7"); None if not an input."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 2 or parts[0] not in SEGMENT_KIND or not parts[1]:
        return None
    return InputTopic(SEGMENT_KIND[parts[0]], parts[1])


def errors_topic(prefix: str, client_id: str) -> str:
    return f"{prefix}/errors/{client_id}"


def alerts_topic(prefix: str, region_code: str) -> str:
    return f"{prefix}/alerts/{region_code}"


#: Sender segment of `labormon doctor`'s probes ("~" is in no account id).
PROBE_MARK = "~doctor."


def probe_topic(prefix: str, segment: str, daemon_account: str) -> str:
    """An input topic only the daemon's account may publish to: `labormon doctor` sends a
    message there and must receive it through the daemon's input subscription, which
    proves the broker lets the daemon read that input (Mosquitto grants every SUBSCRIBE
    and applies the ACL only when delivering). The intake drops probes unread."""
    return f"{prefix}/{segment}/{PROBE_MARK}{daemon_account}"


def is_probe(prefix: str, topic: str) -> bool:
    head, _, sender = topic.rpartition("/")
    return sender.startswith(PROBE_MARK) and head.startswith(prefix.rstrip("/") + "/")
