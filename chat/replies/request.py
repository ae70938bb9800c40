"""What a reply job needs to know, all read before it starts."""

from dataclasses import dataclass, field

from agents.direct import DirectRequest
from agents.events import ChatTurn
from agents.orchestrator import ReplyOverrides


@dataclass
class ReplyRequest:
    """What a job needs to know, all read before it starts."""

    message_id: int
    conversation_id: int
    user_id: int
    history: list[ChatTurn]
    text: str
    overrides: ReplyOverrides
    simple: bool = False
    prefix: str = ""  # text already in the reply (continue)
    # The prompt ends with the prefix (a hand-over), not a request.
    carry_on: bool = False
    earlier_metrics: dict = field(default_factory=dict)  # of its generations (continue)
    reasoning: str = ""  # its reasoning, kept when continued
    user_message_id: int | None = None  # the message answered (None: continue)
    announce: dict = field(default_factory=dict)  # first frame: what started this reply
    direct: DirectRequest | None = None  # an API caller's request, sent as given
    model: str = ""  # only backends serving it ("": any)
