// Friends: requests (send, accept, decline, cancel), invite codes (make, redeem), unfriend and
// block (each asked first), unblock, and calls: the friend's communicationUserId, or — when this
// server has a caller id (client-config's pstnCallerId) — their phone number from that number.
import { useState } from "react";
import { Friend, InviteCode, ok } from "../api/client";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function FriendsTab({ session, report, run, confirm, notify, openCall, openChat }: TabProps) {
  const [friends, reload] = useLoad(async () => {
    const [accepted, incoming, outgoing] = await Promise.all(
      (["accepted", "incoming", "outgoing"] as const).map((status) =>
        ok(session.api.GET("/api/friends", { params: { query: { status } } })),
      ),
    );
    return { accepted: accepted.items, incoming: incoming.items, outgoing: outgoing.items };
  }, report);
  const [requestTo, setRequestTo] = useState("");
  const [invite, setInvite] = useState<InviteCode | null>(null);
  const [code, setCode] = useState("");
  const [blockId, setBlockId] = useState("");
  const phoneCalls = Boolean(session.config.pstnCallerId);
  const user = (userId: string) => ({ params: { path: { userId } } });

  const act = async (work: () => Promise<unknown>) => {
    await run(work);
    reload();
  };
  const call = (friend: Friend, viaPhone: boolean) =>
    run(async () => {
      const info = await ok(session.api.GET("/api/friends/{userId}/call-info", user(friend.userId)));
      if (viaPhone) {
        if (!info.pstn) throw new Error(`${friend.displayName} has no verified phone number.`);
        openCall(`Calling ${friend.displayName} by phone`, {
          targetCallees: [{ phoneNumber: info.pstn.to }],
          alternateCallerId: info.pstn.from,
        }, { registry: `${friend.displayName}'s verified number, dialled from the app's caller id ${info.pstn.from}.` });
      } else {
        if (!info.communicationUserId) throw new Error(`${friend.displayName} has no ACS identity yet: they have not signed in to a calling client.`);
        openCall(`Calling ${friend.displayName}`, { targetCallees: [{ communicationUserId: info.communicationUserId }] }, {
          registry: `${friend.displayName}'s ACS identity, from call-info (accepted friends only).`,
        });
      }
    });
  const chat = (friend: Friend) =>
    run(async () => {
      const thread = await ok(session.api.PUT("/api/friends/{userId}/thread", user(friend.userId)));
      openChat(`Chat with ${friend.displayName}`, thread.threadId!, `Your direct chat thread with ${friend.displayName} exists (${thread.threadId}).`);
    });
  const unfriend = async (friend: Friend) => {
    if (await confirm(`Unfriend ${friend.displayName}? You can no longer call each other.`, "Unfriend")) {
      await act(() => ok(session.api.DELETE("/api/friends/{userId}", user(friend.userId))));
    }
  };
  const block = async (userId: string, name: string) => {
    if (!(await confirm(`Block ${name}? Any friendship ends and their requests are refused.`, "Block"))) return;
    await act(async () => {
      await ok(session.api.PUT("/api/blocks/{userId}", user(userId)));
      notify(`${name} is blocked.`);
    });
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
              <span className="actions">
                <button className="primary" data-testid={`call-${f.userId}`} onClick={() => call(f, false)}>Call</button>
                {phoneCalls && <button data-testid={`call-phone-${f.userId}`} onClick={() => call(f, true)}>Call phone</button>}
                <button data-testid={`chat-${f.userId}`} onClick={() => chat(f)}>Chat</button>
                <button data-testid={`unfriend-${f.userId}`} onClick={() => unfriend(f)}>Unfriend</button>
                <button data-testid={`block-${f.userId}`} onClick={() => block(f.userId, f.displayName)}>Block</button>
              </span>
            </li>
          ))}
        </ul>
        <h3>Requests for you</h3>
        {friends.incoming.length === 0 && <p className="muted">None.</p>}
        <ul className="list" data-testid="friends-incoming">
          {friends.incoming.map((f) => (
            <li key={f.userId} data-testid={`incoming-${f.userId}`}>
              <span className="grow"><strong>{f.displayName}</strong> <span className="muted">{f.userId}</span></span>
              <span className="actions">
                <button className="primary" data-testid={`accept-${f.userId}`} onClick={() => act(() => ok(session.api.PUT("/api/friends/{userId}", user(f.userId))))}>Accept</button>
                <button data-testid={`decline-${f.userId}`} onClick={() => act(() => ok(session.api.DELETE("/api/friends/{userId}", user(f.userId))))}>Decline</button>
                <button data-testid={`block-${f.userId}`} onClick={() => block(f.userId, f.displayName)}>Block</button>
              </span>
            </li>
          ))}
        </ul>
        <h3>Sent</h3>
        {friends.outgoing.length === 0 && <p className="muted">None.</p>}
        <ul className="list" data-testid="friends-outgoing">
          {friends.outgoing.map((f) => (
            <li key={f.userId} data-testid={`outgoing-${f.userId}`}>
              <span className="grow">{f.displayName} <span className="muted">{f.userId}</span></span>
              <button onClick={() => act(() => ok(session.api.DELETE("/api/friends/{userId}", user(f.userId))))}>Cancel</button>
            </li>
          ))}
        </ul>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await ok(session.api.PUT("/api/friends/{userId}", user(requestTo.trim()))); setRequestTo(""); }); }}>
          <label>Their user id <input data-testid="friend-request-user" value={requestTo} onChange={(e) => setRequestTo(e.target.value)} required /></label>
          <button type="submit" data-testid="friend-request-send">Send request</button>
        </form>
      </div>
      <div className="card">
        <h2>Invite codes</h2>
        <div className="row">
          <button data-testid="invite-make" onClick={() => run(async () => setInvite(await ok(session.api.POST("/api/friends/invites"))))}>Make an invite code</button>
          {invite && <span className="wrap">Share <code data-testid="invite-code">{invite.code}</code> <span className="muted">(until {new Date(invite.expiresAt).toLocaleString()})</span></span>}
        </div>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await ok(session.api.POST("/api/friends/invites/{code}", { params: { path: { code: code.trim() } } })); setCode(""); }); }}>
          <label>A friend's code <input data-testid="invite-redeem-code" value={code} onChange={(e) => setCode(e.target.value)} required /></label>
          <button type="submit" data-testid="invite-redeem">Redeem</button>
        </form>
      </div>
      <div className="card">
        <h2>Blocked users</h2>
        <p className="muted">A user you block cannot befriend you, invite you or see you on any list.</p>
        <form className="row" onSubmit={(e) => e.preventDefault()}>
          <label>User id <input data-testid="block-user" value={blockId} onChange={(e) => setBlockId(e.target.value)} required /></label>
          <button type="button" data-testid="block-send" disabled={!blockId.trim()} onClick={async () => { await block(blockId.trim(), blockId.trim()); setBlockId(""); }}>Block</button>
          <button
            type="button"
            data-testid="unblock-send"
            disabled={!blockId.trim()}
            onClick={() => act(async () => {
              await ok(session.api.DELETE("/api/blocks/{userId}", user(blockId.trim())));
              notify(`${blockId.trim()} is unblocked.`);
              setBlockId("");
            })}
          >
            Unblock
          </button>
        </form>
      </div>
    </>
  );
}
