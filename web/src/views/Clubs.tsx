// Clubs: create, join (open clubs), members, and the club call. "Start or join" proposes a new
// group call id with PUT …/call; on 409 the registry answers the active call's id and the client
// joins that one, so two members pressing at once end in the same call.
import { useState } from "react";
import { ActiveCall, ApiError, Club, Member, Page } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function ClubsTab({ session, report, openCall, openChat }: TabProps) {
  const [clubs, reload] = useLoad(() => session.api<Page<Club>>("GET", "/api/clubs").then((p) => p.items), report);
  const [name, setName] = useState("");
  const [visibility, setVisibility] = useState<"open" | "invite">("open");
  const [joinId, setJoinId] = useState("");
  const [members, setMembers] = useState<{ clubId: string; items: Member[] } | null>(null);

  const act = (work: () => Promise<unknown>) => async () => {
    try {
      await work();
      reload();
    } catch (error) {
      report(error);
    }
  };
  const startOrJoin = async (club: Club) => {
    try {
      const path = `/api/clubs/${encodeURIComponent(club.clubId)}/call`;
      let groupId: string;
      try {
        groupId = (await session.api<ActiveCall>("PUT", path, { groupCallId: crypto.randomUUID() })).groupCallId;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409)) throw error;
        // The club already has a call: join the id the registry answered, never a second call.
        groupId = String(error.body.groupCallId ?? (await session.api<ActiveCall>("GET", path)).groupCallId);
      }
      openCall(`${club.name} call`, { locator: { groupId } });
      reload();
    } catch (error) {
      report(error);
    }
  };
  const showMembers = async (club: Club) => {
    try {
      const page = await session.api<Page<Member>>("GET", `/api/clubs/${encodeURIComponent(club.clubId)}/members`);
      setMembers({ clubId: club.clubId, items: page.items });
    } catch (error) {
      report(error);
    }
  };

  if (!clubs) return <p className="muted">Loading…</p>;
  return (
    <>
      <div className="card" data-testid="clubs">
        <h2>Your clubs</h2>
        {clubs.length === 0 && <p className="muted">No clubs yet: create one, or join an open club by its id.</p>}
        <ul className="list">
          {clubs.map((club) => (
            <li key={club.clubId} data-testid={`club-${club.clubId}`}>
              <span className="grow">
                <strong>{club.name}</strong> <span className="muted">{club.memberCount} member(s) · {club.visibility} · <code>{club.clubId}</code></span>{" "}
                {club.activeCall && <span className="badge live">call in progress</span>}
              </span>
              <button className="primary" data-testid={`club-call-${club.clubId}`} onClick={() => startOrJoin(club)}>
                {club.activeCall ? "Join the club call" : "Start or join the club call"}
              </button>
              <button data-testid={`club-members-${club.clubId}`} onClick={() => showMembers(club)}>Members</button>
              {club.chatThreadId && <button data-testid={`club-chat-${club.clubId}`} onClick={() => openChat(`${club.name} chat`, club.chatThreadId!)}>Chat</button>}
            </li>
          ))}
        </ul>
        {members && (
          <div data-testid="club-members">
            <h3>Members</h3>
            <ul className="list">
              {members.items.map((m) => (
                <li key={m.userId} data-testid={`member-${m.userId}`}><span className="grow">{m.displayName ?? m.userId} <span className="muted">{m.userId}</span></span><span className="badge">{m.role}</span></li>
              ))}
            </ul>
          </div>
        )}
      </div>
      <div className="card">
        <h2>New club</h2>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await session.api("POST", "/api/clubs", { name: name.trim(), visibility }); setName(""); })(); }}>
          <label>Name <input data-testid="club-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
          <label>Who may join
            <select data-testid="club-visibility" value={visibility} onChange={(e) => setVisibility(e.target.value as "open" | "invite")}>
              <option value="open">anyone with the id</option>
              <option value="invite">members the owner adds</option>
            </select>
          </label>
          <button type="submit" className="primary" data-testid="club-create">Create</button>
        </form>
        <form className="row" onSubmit={(e) => { e.preventDefault(); void act(async () => { await session.api("POST", `/api/clubs/${encodeURIComponent(joinId.trim())}/join`); setJoinId(""); })(); }}>
          <label>Club id <input data-testid="club-join-id" value={joinId} onChange={(e) => setJoinId(e.target.value)} required /></label>
          <button type="submit" data-testid="club-join">Join</button>
        </form>
      </div>
    </>
  );
}
