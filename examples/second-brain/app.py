"""Second Brain's realtime features (seeds 000-002) on Switchboard: a FastAPI backend with no
WebSocket code of its own. Each route changes its state, then tells the people concerned with
one SDK call. State lives in memory here; the real app keeps it in MongoDB.

Run it beside `switchboard serve --manifest examples/second-brain/switchboard.json`:

    SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_API_KEY=sk_second_brain \\
        uvicorn app:app --port 8000

The caller is named by the `X-User` header (the real app's `get_current_user`).
"""

import os
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from switchboard_sdk import Switchboard


@dataclass
class Family:
    id: str
    name: str
    admins: List[str]
    members: List[str]
    frozen: bool = False
    invitations: Dict[str, dict] = field(default_factory=dict)
    requests: Dict[str, dict] = field(default_factory=dict)


@dataclass
class State:
    balances: Dict[str, int] = field(default_factory=dict)
    families: Dict[str, Family] = field(default_factory=dict)
    shop: List[dict] = field(default_factory=list)


def create_app(sb: Switchboard) -> FastAPI:
    app, state = FastAPI(title="Second Brain (on Switchboard)"), State()

    def current_user(x_user: str = Header()) -> str:
        return x_user

    def family_of(family_id: str) -> Family:
        if family_id not in state.families:
            raise HTTPException(404, f"no family {family_id}")
        return state.families[family_id]

    def admin_of(family: Family, user: str) -> None:
        if user not in family.admins:
            raise HTTPException(403, "only a family admin may do this")

    def group(family: Family) -> str:
        return f"family-{family.id}"

    class NewFamily(BaseModel):
        name: str

    @app.post("/families")
    def create_family(body: NewFamily, user: str = Depends(current_user)):
        family = Family(id=uuid.uuid4().hex[:8], name=body.name, admins=[user], members=[user])
        state.families[family.id] = family
        sb.add_member(f"group:{group(family)}", user)
        return {"family_id": family.id}

    # Invitations: to the invitee; answers and cancellations to the inviter and the admins.

    class Invite(BaseModel):
        invitee: str

    @app.post("/families/{family_id}/invitations")
    def invite(family_id: str, body: Invite, user: str = Depends(current_user)):
        family = family_of(family_id)
        admin_of(family, user)
        invitation = {"invitation_id": uuid.uuid4().hex[:8], "invitee": body.invitee, "inviter": user}
        family.invitations[invitation["invitation_id"]] = invitation
        sb.emit_to_user(body.invitee, "family_invitation", {
            "invitation_id": invitation["invitation_id"], "family_id": family.id,
            "family_name": family.name, "inviter_username": user})
        return invitation

    def answer(family: Family, invitation_id: str, user: str, event: str) -> dict:
        invitation = family.invitations.pop(invitation_id, None)
        if invitation is None or user not in (invitation["invitee"], invitation["inviter"], *family.admins):
            raise HTTPException(404, f"no invitation {invitation_id}")
        data = {"invitation_id": invitation_id, "family_id": family.id, "invitee": invitation["invitee"], "by": user}
        sb.broadcast_to_users(data, sorted({invitation["inviter"], *family.admins}), event=event)
        return invitation

    @app.post("/families/{family_id}/invitations/{invitation_id}/accept")
    def accept(family_id: str, invitation_id: str, user: str = Depends(current_user)):
        family = family_of(family_id)
        answer(family, invitation_id, user, "family_invitation_accepted")
        family.members.append(user)
        sb.add_member(f"group:{group(family)}", user)  # the new member's devices join at once
        sb.emit_to_account(group(family), "family_member_joined", {"family_id": family.id, "user": user})
        return {"joined": family.id}

    @app.post("/families/{family_id}/invitations/{invitation_id}/decline")
    def decline(family_id: str, invitation_id: str, user: str = Depends(current_user)):
        answer(family_of(family_id), invitation_id, user, "family_invitation_declined")
        return {"declined": invitation_id}

    @app.delete("/families/{family_id}/invitations/{invitation_id}")
    def cancel(family_id: str, invitation_id: str, user: str = Depends(current_user)):
        family = family_of(family_id)
        admin_of(family, user)
        invitation = answer(family, invitation_id, user, "family_invitation_cancelled")
        sb.emit_to_user(invitation["invitee"], "family_invitation_cancelled",
                        {"invitation_id": invitation_id, "family_id": family.id})
        return {"cancelled": invitation_id}

    class Role(BaseModel):
        role: str

    @app.put("/families/{family_id}/members/{member}/role")
    def change_role(family_id: str, member: str, body: Role, user: str = Depends(current_user)):
        family = family_of(family_id)
        admin_of(family, user)
        if body.role == "admin" and member not in family.admins:
            family.admins.append(member)
        elif body.role == "member" and member in family.admins:
            family.admins.remove(member)
        sb.emit_to_account(group(family), "family_member_role_changed",
                           {"family_id": family.id, "user": member, "role": body.role, "by": user})
        return {"admins": family.admins}

    # SBD token requests: to the admins; the decision to the requester.

    class TokenRequest(BaseModel):
        amount: int
        reason: str = ""

    @app.post("/families/{family_id}/token-requests")
    def request_tokens(family_id: str, body: TokenRequest, user: str = Depends(current_user)):
        family = family_of(family_id)
        request = {"request_id": uuid.uuid4().hex[:8], "family_id": family.id, "requester": user,
                   "amount": body.amount, "reason": body.reason}
        family.requests[request["request_id"]] = request
        sb.broadcast_to_users(request, family.admins, event="sbd_token_request_created")
        return request

    class Decision(BaseModel):
        approve: bool

    @app.post("/families/{family_id}/token-requests/{request_id}/decision")
    def decide(family_id: str, request_id: str, body: Decision, user: str = Depends(current_user)):
        family = family_of(family_id)
        admin_of(family, user)
        request = family.requests.pop(request_id, None) or {}
        if not request:
            raise HTTPException(404, f"no request {request_id}")
        event = "sbd_token_request_approved" if body.approve else "sbd_token_request_denied"
        if body.approve:
            state.balances[request["requester"]] = state.balances.get(request["requester"], 0) + request["amount"]
        sb.emit_to_user(request["requester"], event, {**request, "by": user,
                                                      "new_balance": state.balances.get(request["requester"], 0)})
        return {"decided": request_id}

    @app.post("/families/{family_id}/freeze")
    def freeze(family_id: str, frozen: bool = True, user: str = Depends(current_user)):
        family = family_of(family_id)
        admin_of(family, user)
        family.frozen = frozen
        event = "family_account_frozen" if frozen else "family_account_unfrozen"
        sb.emit_to_account(group(family), event, {"family_id": family.id, "by": user})
        return {"frozen": frozen}

    # The shop: purchases to the family, new items to everyone.

    class Purchase(BaseModel):
        item: str
        price: int

    @app.post("/families/{family_id}/purchases")
    def purchase(family_id: str, body: Purchase, user: str = Depends(current_user)):
        family = family_of(family_id)
        if family.frozen:
            raise HTTPException(409, "the family account is frozen")
        sb.emit_to_account(group(family), "family_purchase",
                           {"family_id": family.id, "buyer": user, "item": body.item, "price": body.price})
        return {"bought": body.item}

    @app.post("/shop/items")
    def add_item(body: Purchase, user: str = Depends(current_user)):
        state.shop.append({"item": body.item, "price": body.price})
        sb.broadcast("shop_item_added", {"item": body.item, "price": body.price})
        return {"items": len(state.shop)}

    # Security events: to the user's own devices; a password change then signs them out everywhere.

    @app.post("/auth/password")
    def change_password(user: str = Depends(current_user)):
        sb.emit_to_user(user, "security_password_changed", {"user": user})
        return {"disconnected": sb.disconnect_user(user)["disconnected"]}

    @app.post("/auth/2fa")
    def two_factor(enabled: bool, user: str = Depends(current_user)):
        sb.emit_to_user(user, "security_2fa_changed", {"enabled": enabled})
        return {"enabled": enabled}

    class Device(BaseModel):
        device: str
        ip: Optional[str] = None

    @app.post("/auth/devices")
    def new_device(body: Device, user: str = Depends(current_user)):
        sb.emit_to_user(user, "security_new_device", {"device": body.device, "ip": body.ip})
        return {"notified": user}

    @app.put("/profile/{part}")
    def update_profile(part: str, body: dict, user: str = Depends(current_user)):
        if part not in ("profile", "avatar", "banner", "theme"):
            raise HTTPException(404, f"no {part}")
        sb.emit_to_user(user, f"{part}_updated", body)
        return {"updated": part}

    # SBD token transfers: both parties, each with their new balance (seed 002).

    class Transfer(BaseModel):
        to: str
        amount: int

    @app.post("/sbd-tokens/send")
    def send_tokens(body: Transfer, user: str = Depends(current_user)):
        if body.amount <= 0 or state.balances.get(user, 0) < body.amount:
            raise HTTPException(400, "amount must be positive and covered by the balance")
        state.balances[user] -= body.amount
        state.balances[body.to] = state.balances.get(body.to, 0) + body.amount
        sb.emit_to_user(body.to, "sbd_tokens_received",
                        {"from_username": user, "amount": body.amount, "new_balance": state.balances[body.to]})
        sb.emit_to_user(user, "sbd_tokens_sent",
                        {"to_username": body.to, "amount": body.amount, "new_balance": state.balances[user]})
        return {"balance": state.balances[user]}

    return app


def _from_environment() -> FastAPI:
    sb = Switchboard(os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080"),
                     os.environ.get("SWITCHBOARD_API_KEY", "sk_second_brain"),
                     os.environ.get("SWITCHBOARD_APP", "second-brain"))
    return create_app(sb)


if os.environ.get("EXAMPLE_NO_APP") is None:
    app = _from_environment()
