"""Second Brain end to end: the FastAPI backend (in-process) publishes through the Python SDK
to a live Switchboard, and each user's WebSocket gets exactly the seed's events, in order."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from switchboard_sdk import Switchboard, mint_token
from switchboard_sdk.testing import serve

HERE = Path(__file__).resolve().parent
SECRET, KEY = "second-brain-secret", "sk_second_brain"


@pytest.fixture(scope="module")
def switchboard(switchboard_bin):
    env = {"SECOND_BRAIN_JWT_SECRET": SECRET, "SWITCHBOARD_API_KEY": KEY}
    with serve(HERE / "switchboard.json", env=env, binary=switchboard_bin) as url:
        yield url.removeprefix("http://")


class User:
    """One signed-in user: a WebSocket (as the browser holds) and the backend's API as them."""

    def __init__(self, name, switchboard, api):
        self.name, self.api = name, api
        self.ws = connect(f"ws://{switchboard}/ws?token={mint_token(SECRET, name)}")
        assert self.next()["type"] == "connected"

    def next(self):
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            if not frame["type"].startswith("presence:"):  # family members hear each other come and go
                return frame

    def expect(self, kind, **fields):
        frame = self.next()
        assert frame["type"] == kind, frame
        for key, value in fields.items():
            assert frame["data"][key] == value, frame
        return frame["data"]

    def post(self, path, body=None, method="POST", status=200):
        response = self.api.request(method, path, json=body, headers={"X-User": self.name})
        assert response.status_code == status, response.text
        return response.json()


def test_the_seed_events_reach_exactly_the_people_concerned(switchboard, backend):
    with Switchboard(f"http://{switchboard}", KEY, "second-brain") as sb:
        api = TestClient(backend.create_app(sb))
        alice, bob, carol = (User(n, switchboard, api) for n in ("alice", "bob", "carol"))
        family = alice.post("/families", {"name": "Smiths"})["family_id"]

        # Invite, accept: the invitee, then the inviter and admins; the new member joins the group at once.
        invitation = alice.post(f"/families/{family}/invitations", {"invitee": "bob"})["invitation_id"]
        bob.expect("family_invitation", family_name="Smiths", inviter_username="alice")
        bob.post(f"/families/{family}/invitations/{invitation}/accept")
        alice.expect("family_invitation_accepted", invitee="bob")
        for member in (alice, bob):
            member.expect("family_member_joined", user="bob")
        alice.post(f"/families/{family}/members/bob/role", {"role": "admin"}, method="PUT")
        for member in (alice, bob):
            member.expect("family_member_role_changed", user="bob", role="admin")

        # Cancel and decline: to the inviter and every admin (and a cancel to the invitee).
        first = alice.post(f"/families/{family}/invitations", {"invitee": "carol"})["invitation_id"]
        carol.expect("family_invitation")
        alice.post(f"/families/{family}/invitations/{first}", method="DELETE")
        for admin in (alice, bob):
            admin.expect("family_invitation_cancelled", invitee="carol")
        carol.expect("family_invitation_cancelled", invitation_id=first)
        second = bob.post(f"/families/{family}/invitations", {"invitee": "carol"})["invitation_id"]
        carol.expect("family_invitation", inviter_username="bob")
        carol.post(f"/families/{family}/invitations/{second}/decline")
        for admin in (alice, bob):
            admin.expect("family_invitation_declined", invitee="carol", by="carol")

        # Token requests, then a transfer with both parties' new balances.
        request = bob.post(f"/families/{family}/token-requests", {"amount": 100})["request_id"]
        for admin in (alice, bob):
            admin.expect("sbd_token_request_created", requester="bob", amount=100)
        alice.post(f"/families/{family}/token-requests/{request}/decision", {"approve": True})
        bob.expect("sbd_token_request_approved", new_balance=100)
        bob.post("/sbd-tokens/send", {"to": "alice", "amount": 30})
        alice.expect("sbd_tokens_received", from_username="bob", amount=30, new_balance=30)
        bob.expect("sbd_tokens_sent", to_username="alice", amount=30, new_balance=70)

        # Frozen accounts refuse purchases; purchases go to the family, new items to everyone.
        alice.post(f"/families/{family}/freeze?frozen=true")
        for member in (alice, bob):
            member.expect("family_account_frozen", by="alice")
        bob.post(f"/families/{family}/purchases", {"item": "hat", "price": 5}, status=409)
        alice.post(f"/families/{family}/freeze?frozen=false")
        for member in (alice, bob):
            member.expect("family_account_unfrozen")
        bob.post(f"/families/{family}/purchases", {"item": "hat", "price": 5})
        for member in (alice, bob):
            member.expect("family_purchase", buyer="bob", item="hat")
        alice.post("/shop/items", {"item": "scarf", "price": 8})
        for user in (alice, bob, carol):
            user.expect("shop_item_added", item="scarf")

        # Profile parts and security events: the user's own devices only.
        for part in ("profile", "avatar", "banner", "theme"):
            carol.post(f"/profile/{part}", {"value": part}, method="PUT")
            carol.expect(f"{part}_updated", value=part)
        carol.post("/auth/2fa?enabled=true")
        carol.expect("security_2fa_changed", enabled=True)
        carol.post("/auth/devices", {"device": "Pixel 9"})
        carol.expect("security_new_device", device="Pixel 9")
        laptop = User("carol", switchboard, api)
        assert carol.post("/auth/password") == {"disconnected": 2}
        for device in (carol, laptop):
            device.expect("security_password_changed")
        for device in (carol, laptop):
            with pytest.raises(Exception) as closed:
                device.next()
            assert "4403" in str(closed.value)
        # Nobody got anything else: one more event each proves their queues held only the above.
        sb.broadcast("end")
        for user in (alice, bob):
            assert user.next()["type"] == "end"
