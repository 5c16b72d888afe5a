"""Switchboard's server SDK: what an app backend calls instead of its own ConnectionManager.

    from switchboard_sdk import Switchboard
    sb = Switchboard("http://127.0.0.1:8080", api_key="sk_...", app="my_app")
    sb.emit_to_user("alice", "family_invitation", {"family_id": "f1"})

`AsyncSwitchboard` has the same methods as coroutines.
"""

from .client import AsyncSwitchboard, Switchboard
from .errors import SwitchboardError
from .security import mint_token, verify_signature

__all__ = ["AsyncSwitchboard", "Switchboard", "SwitchboardError", "mint_token", "verify_signature"]
