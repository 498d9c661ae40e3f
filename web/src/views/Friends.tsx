// Friends: requests (send, accept, decline), invite codes (make, redeem), and calls: the friend's
// communicationUserId, or their phone number from the app's caller id when call-info has pstn.
import { useState } from "react";
import type { CallInfo, Friend, Invite, Page } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function FriendsTab({ session, report, openCall, openChat }: TabProps) {
  const [friends, reload] = useLoad(async () => {
    const [accepted, incoming, outgoing] = await Promise.all(
      (["accepted", "incoming", "outgoing"] as const).map((status) =>
        session.api<Page<Friend>>("GET", `/api/friends?status=${status}`),
      ),
    );
    return { accepted: accepted.items, incoming: incoming.items, outgoing: outgoing.items };
  }, report);
  const [requestTo, setRequestTo] = useState("");
  const [invite, setInvite] = useState<Invite | null>(null);
  const [code, setCode] = useState("");

  const act = (work: () => Promise<unknown>) => async () => {
    try {
      await work();
      reload();
    } catch (error) {
      report(error);
    }
  };
  const call = async (friend: Friend, viaPhone: boolean) => {
    try {
      const info = await session.api<CallInfo>("GET", `/api/friends/${encodeURIComponent(friend.userId)}/call-info`);
      if (viaPhone && !info.pstn) throw new Error(`${friend.displayName} has no verified phone number, or this app has no caller id (PSTN_CALLER_ID).`);
      if (viaPhone && info.pstn) {
        openCall(`Calling ${friend.displayName} by phone`, {
          targetCallees: [{ phoneNumber: info.pstn.to }],
          alternateCallerId: info.pstn.from,
        });
      } else {
        openCall(`Calling ${friend.displayName}`, { targetCallees: [{ communicationUserId: info.communicationUserId }] });
      }
    } catch (error) {
      report(error);
    }
  };
  const chat = async (friend: Friend) => {
    try {
      const thread = await session.api<{ threadId: string }>("PUT", `/api/friends/${encodeURIComponent(friend.userId)}/thread`);
      openChat(`Chat with ${friend.displayName}`, thread.threadId);
    } catch (error) {
      report(error);
    }
  };

  if (!friends) return <p className="muted">Loading…</p>;
  return (
    <>
      <div className="card" data-testid="friends">
        <h2>Friends</h2>
        {friends.accepted.length === 0 && <p className="muted">No friends yet: send a request or share an invite code.</p>}
        <ul className="list" data-testid="friends-accepted">
          {friends.accepted.map((f) => (
            <li key={f.userId} data-testid={`friend-${f.userId}`}>
              <span className="grow"><strong>{f.displayName}</strong> <span className="muted">{f.userId}</span></span>
              <button className="primary" data-testid={`call-${f.userId}`} onClick={() => call(f, false)}>Call</button>
              <button data-testid={`call-phone-${f.userId}`} onClick={() => call(f, true)}>Call phone</button>
              <button data-testid={`chat-${f.userId}`} onClick={() => chat(f)}>Chat</button>
              <button onClick={act(() => session.api("DELETE", `/api/friends/${encodeURIComponent(f.userId)}`))}>Unfriend</button>
            </li>
          ))}
        </ul>
        <h3>Requests for you</h3>
        <ul className="list" data-testid="friends-incoming">
          {friends.incoming.map((f) => (
            <li key={f.userId} data-testid={`incoming-${f.userId}`}>
              <span className="grow"><strong>{f.displayName}</strong> <span className="muted">{f.userId}</span></span>
              <button className="primary" data-testid={`accept-${f.userId}`} onClick={act(() => session.api("PUT", `/api/friends/${encodeURIComponent(f.userId)}`))}>Accept</button>
              <button onClick={act(() => session.api("DELETE", `/api/friends/${encodeURIComponent(f.userId)}`))}>Decline</button>
            </li>
          ))}
        </ul>
        <h3>Sent</h3>
        <ul className="list" data-testid="friends-outgoing">
          {friends.outgoing.map((f) => (
            <li key={f.userId} data-testid={`outgoing-${f.userId}`}>
              <span className="grow">{f.displayName} <span className="muted">{f.userId}</span></span>
              <button onClick={act(() => session.api("DELETE", `/api/friends/${encodeURIComponent(f.userId)}`))}>Cancel</button>
            </li>
          ))}
        </ul>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await session.api("PUT", `/api/friends/${encodeURIComponent(requestTo.trim())}`); setRequestTo(""); })(); }}>
          <label>Their user id <input data-testid="friend-request-user" value={requestTo} onChange={(e) => setRequestTo(e.target.value)} required /></label>
          <button type="submit" data-testid="friend-request-send">Send request</button>
        </form>
      </div>
      <div className="card">
        <h2>Invite codes</h2>
        <div className="row">
          <button data-testid="invite-make" onClick={act(async () => setInvite(await session.api<Invite>("POST", "/api/friends/invites")))}>Make an invite code</button>
          {invite && <span>Share <code data-testid="invite-code">{invite.code}</code> <span className="muted">(until {new Date(invite.expiresAt).toLocaleString()})</span></span>}
        </div>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await session.api("POST", `/api/friends/invites/${encodeURIComponent(code.trim())}`); setCode(""); })(); }}>
          <label>A friend's code <input data-testid="invite-redeem-code" value={code} onChange={(e) => setCode(e.target.value)} required /></label>
          <button type="submit" data-testid="invite-redeem">Redeem</button>
        </form>
      </div>
    </>
  );
}
