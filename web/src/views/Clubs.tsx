// Clubs: invitations to accept or decline, the caller's clubs, one club opened (by a click or a
// `?clubId=` link) with its call, chat, members (invite, remove, leave), SMS invitations and
// deletion; a new club; joining an open club by id.
//
// "Start or join" proposes a new group call id with PUT …/call; on 409 the registry has a call
// already and the client joins the one GET …/call answers (which, with CLUB_CALLS=rooms, also
// puts the caller on the room's roster), so two members pressing at once end in the same call.
// When the client leaves a call it was the last one in (the Calling SDK's remote participants),
// it clears the club's call, so the list never shows a call nobody is in.
import { useState } from "react";
import { ActiveCall, ApiError, Club, ClubInvitation, Member, ok } from "../api/client";
import type { CallEnd } from "../adapters";
import type { TabProps } from "../App";
import { SmsInvite } from "./SmsInvite";
import { useLoad } from "./useList";

/** "just now", "5 min ago", "2 h ago": how long ago an ISO time was. */
export function ago(iso: string, now = Date.now()): string {
  const minutes = Math.floor((now - new Date(iso).getTime()) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h ago` : `${Math.floor(hours / 24)} days ago`;
}

const club = (clubId: string) => ({ params: { path: { clubId } } });
const member = (clubId: string, userId: string) => ({ params: { path: { clubId, userId } } });

/** The call's locator: an ACS room (CLUB_CALLS=rooms) or a group call. */
function locatorOf(call: ActiveCall) {
  return call.roomId ? { roomId: call.roomId } : { groupId: call.groupCallId! };
}
const sameCall = (a: ActiveCall, b: ActiveCall) => (a.roomId ?? a.groupCallId) === (b.roomId ?? b.groupCallId);

export function ClubsTab(props: TabProps) {
  const { session, report, run, openCall, link } = props;
  const [clubs, reload] = useLoad(() => ok(session.api.GET("/api/clubs")).then((p) => p.items), report);
  const [invitations, reloadInvitations] = useLoad(async () => {
    try {
      return (await ok(session.api.GET("/api/me/club-invitations"))).items;
    } catch (error) {
      // A server without club invitations (before club invitations) has none to show.
      if (error instanceof ApiError && error.status === 404) return [] as ClubInvitation[];
      throw error;
    }
  }, report);
  const [open, setOpen] = useState<string | null>(link && "clubId" in link ? link.clubId : null);
  const refresh = () => {
    reload();
    reloadInvitations();
  };

  /** PUT …/call with a new group call id; a rooms-mode server (CLUB_CALLS=rooms) takes no body
   * and makes the room itself, so a 400 for the body is asked again without one. */
  const register = async (path: ReturnType<typeof club>): Promise<ActiveCall> => {
    try {
      return await ok(session.api.PUT("/api/clubs/{clubId}/call", { ...path, body: { groupCallId: crypto.randomUUID() } }));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 400)) throw error;
      return await ok(session.api.PUT("/api/clubs/{clubId}/call", { ...path, body: undefined as never }));
    }
  };

  const startOrJoin = (target: Pick<Club, "clubId" | "name">) =>
    run(async () => {
      const path = club(target.clubId);
      let call: ActiveCall;
      let mine = false;
      try {
        call = await register(path);
        mine = true;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 409)) throw error;
        // The club already has a call: join the one the registry answers, never a second call.
        call = await ok(session.api.GET("/api/clubs/{clubId}/call", path));
      }
      const id = call.roomId ?? call.groupCallId;
      openCall(`${target.name} call`, { locator: locatorOf(call) }, {
        registry: mine
          ? `The club's call is registered (${id}): every member who opens it joins this same call.`
          : `The club already had a call (${id}); you were given it to join, not a second one.`,
        onEnded: (end) => void clearIfLast(target.clubId, call, mine, end),
      });
      refresh();
    });

  /** The last one out clears the club's call: nobody left in it (or, for a call that never
   * connected, one this client registered itself), and it is still the club's call. */
  const clearIfLast = async (clubId: string, call: ActiveCall, mine: boolean, end: CallEnd) => {
    if (end.remoteParticipants > 0 || !(end.connected || mine)) return;
    try {
      const current = await ok(session.api.GET("/api/clubs/{clubId}/call", club(clubId)));
      if (sameCall(current, call)) await ok(session.api.DELETE("/api/clubs/{clubId}/call", club(clubId)));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) console.warn("Switchboard: could not clear the club's call", error);
    }
    refresh();
  };

  return (
    <>
      {invitations && invitations.length > 0 && (
        <div className="card" data-testid="club-invitations">
          <h2>Invitations</h2>
          <ul className="list">
            {invitations.map((inv) => (
              <li key={inv.clubId} data-testid={`invitation-${inv.clubId}`}>
                <span className="grow"><strong>{inv.name}</strong> <span className="muted">from {inv.ownerId} · {ago(inv.invitedAt)}</span></span>
                <span className="actions">
                  <button className="primary" data-testid={`invitation-accept-${inv.clubId}`} onClick={async () => {
                    if (await run(() => ok(session.api.POST("/api/clubs/{clubId}/join", club(inv.clubId))))) setOpen(inv.clubId);
                    refresh();
                  }}>Accept</button>
                  <button data-testid={`invitation-decline-${inv.clubId}`} onClick={async () => {
                    await run(() => ok(session.api.DELETE("/api/clubs/{clubId}/members/{userId}", member(inv.clubId, session.profile.userId))));
                    refresh();
                  }}>Decline</button>
                </span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {open && (
        <ClubDetail key={open} {...props} clubId={open} invitation={invitations?.find((i) => i.clubId === open) ?? null}
          onChanged={refresh} onClosed={() => { setOpen(null); refresh(); }} startOrJoin={startOrJoin} />
      )}
      <div className="card" data-testid="clubs">
        <h2>Your clubs</h2>
        {clubs === null && <p className="muted">Loading…</p>}
        {clubs?.length === 0 && <p className="muted">No clubs yet: create one, or join an open club by its id.</p>}
        <ul className="list">
          {clubs?.map((c) => (
            <li key={c.clubId} data-testid={`club-${c.clubId}`}>
              <span className="grow">
                <strong>{c.name}</strong>{" "}
                <span className="muted">{c.memberCount} member{c.memberCount === 1 ? "" : "s"} · {c.visibility === "open" ? "open" : "invite only"}</span>{" "}
                {c.activeCall && <span className="badge live" data-testid={`club-live-${c.clubId}`}>call in progress · started {ago(c.activeCall.startedAt)}</span>}
              </span>
              <span className="actions">
                <button className="primary" data-testid={`club-call-${c.clubId}`} onClick={() => startOrJoin(c)}>
                  {c.activeCall ? "Join the call" : "Start a call"}
                </button>
                <button data-testid={`club-open-${c.clubId}`} onClick={() => setOpen(c.clubId)}>Open</button>
              </span>
            </li>
          ))}
        </ul>
      </div>
      <NewClub {...props} onCreated={(id) => { setOpen(id); refresh(); }} />
    </>
  );
}

function ClubDetail(props: TabProps & {
  clubId: string;
  invitation: ClubInvitation | null;
  onChanged(): void;
  onClosed(): void;
  startOrJoin(club: Pick<Club, "clubId" | "name">): Promise<boolean>;
}) {
  const { session, report, run, confirm, notify, openChat, clubId, invitation, onChanged, onClosed, startOrJoin } = props;
  const invited = invitation !== null;
  const [missing, setMissing] = useState(false);
  const [detail, reload] = useLoad(async () => {
    try {
      const found = await ok(session.api.GET("/api/clubs/{clubId}", club(clubId)));
      // The members' pages, then (to the owner) the invitees' page that follows them: a few
      // pages at most in this panel, which shows a club's first members.
      const members: Member[] = [];
      let continuation: string | undefined;
      for (let pages = 0; found.role && pages < 5; pages++) {
        const query = { params: { path: { clubId }, query: continuation ? { continuation } : {} } };
        const page = await ok(session.api.GET("/api/clubs/{clubId}/members", query));
        members.push(...(page.items as Member[]));
        if (!page.continuation) break;
        continuation = page.continuation;
      }
      return { club: found, members };
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        setMissing(true);
        return null;
      }
      throw error;
    }
  }, report);
  const [inviteId, setInviteId] = useState("");
  const me = session.profile.userId;
  const changed = () => {
    reload();
    onChanged();
  };

  if (missing && invitation) {
    // An invite-only club shows nothing of itself to an invitee but the invitation.
    return (
      <div className="card" data-testid="club-detail" data-state="invited">
        <h2 data-testid="club-detail-name">{invitation.name}</h2>
        <p className="muted">{invitation.ownerId} invited you {ago(invitation.invitedAt)}.</p>
        <div className="row">
          <button className="primary" data-testid="club-detail-join" onClick={async () => {
            if (await run(() => ok(session.api.POST("/api/clubs/{clubId}/join", club(clubId))))) {
              notify(`You joined ${invitation.name}.`);
              setMissing(false);
              changed();
            }
          }}>Accept the invitation</button>
          <button data-testid="club-detail-decline" onClick={async () => {
            if (await run(() => ok(session.api.DELETE("/api/clubs/{clubId}/members/{userId}", member(clubId, session.profile.userId))))) onClosed();
          }}>Decline</button>
        </div>
      </div>
    );
  }
  if (missing) {
    return (
      <div className="card" data-testid="club-detail" data-state="missing">
        <p>No club <code className="wrap">{clubId}</code> for you: it does not exist, or it is invite-only and you are not invited.</p>
        <button onClick={onClosed}>Close</button>
      </div>
    );
  }
  if (!detail) return <div className="card" data-testid="club-detail"><p className="muted">Loading…</p></div>;
  const c = detail.club;
  const owner = c.role === "owner";

  return (
    <div className="card" data-testid="club-detail" data-club={c.clubId}>
      <div className="row between">
        <h2 data-testid="club-detail-name">{c.name}</h2>
        <button onClick={onClosed} data-testid="club-detail-close">Close</button>
      </div>
      <p className="muted">
        {c.visibility === "open" ? "Open: anyone with its id may join" : "Invite only: the owner invites, the invitee accepts"} · owner {c.ownerId} ·
        id <code className="wrap" data-testid="club-detail-id">{c.clubId}</code>
      </p>
      {!c.role && (
        <div className="row">
          <button className="primary" data-testid="club-detail-join" onClick={async () => {
            if (await run(() => ok(session.api.POST("/api/clubs/{clubId}/join", club(c.clubId))))) {
              notify(`You joined ${c.name}.`);
              changed();
            }
          }}>{invited ? "Accept the invitation" : "Join this club"}</button>
        </div>
      )}
      {c.role && (
        <>
          <div className="row">
            <button className="primary" data-testid="club-detail-call" onClick={() => startOrJoin(c)}>
              {c.activeCall ? "Join the call" : "Start a call"}
            </button>
            {c.activeCall && (
              <>
                <span className="badge live">call started {ago(c.activeCall.startedAt)} by {c.activeCall.startedBy}</span>
                <button data-testid="club-call-end" onClick={async () => {
                  if (!(await confirm(`End ${c.name}'s call for everyone? Members still in it are not disconnected, but the club no longer lists it.`, "End the call"))) return;
                  await run(() => ok(session.api.DELETE("/api/clubs/{clubId}/call", club(c.clubId))));
                  changed();
                }}>End the call</button>
              </>
            )}
            {c.chatThreadId && (
              <button data-testid={`club-chat-${c.clubId}`} onClick={() => openChat(`${c.name} chat`, c.chatThreadId!, `The club's chat thread exists (${c.chatThreadId}); every member is in it.`)}>Chat</button>
            )}
          </div>
          <h3>Members</h3>
          <ul className="list" data-testid="club-members">
            {detail.members.map((m) => (
              <li key={m.userId} data-testid={`member-${m.userId}`}>
                <span className="grow">{m.displayName ?? m.userId} <span className="muted">{m.userId}</span></span>
                <span className="badge">{m.status === "invited" ? "invited" : m.role}</span>
                {owner && m.userId !== me && (
                  <button data-testid={`member-remove-${m.userId}`} onClick={async () => {
                    const what = m.status === "invited" ? `Withdraw ${m.displayName ?? m.userId}'s invitation?` : `Remove ${m.displayName ?? m.userId} from ${c.name}?`;
                    if (!(await confirm(what, "Remove"))) return;
                    await run(() => ok(session.api.DELETE("/api/clubs/{clubId}/members/{userId}", member(c.clubId, m.userId))));
                    changed();
                  }}>Remove</button>
                )}
              </li>
            ))}
          </ul>
          {owner && (
            <form className="row" onSubmit={async (e) => {
              e.preventDefault();
              const userId = inviteId.trim();
              await run(async () => {
                const answer = (await ok(session.api.PUT("/api/clubs/{clubId}/members/{userId}", member(c.clubId, userId)))) as { status?: string };
                notify(answer.status === "invited" ? `${userId} is invited: they become a member once they accept.` : `${userId} is a member of ${c.name}.`);
                setInviteId("");
              });
              changed();
            }}>
              <label>Invite a user by id <input data-testid="member-invite-user" value={inviteId} onChange={(e) => setInviteId(e.target.value)} required /></label>
              <button type="submit" data-testid="member-invite">Invite</button>
            </form>
          )}
          <SmsInvite {...props} target={{ clubId: c.clubId }} />
          <div className="row">
            {owner ? (
              <button className="danger" data-testid="club-delete" onClick={async () => {
                if (!(await confirm(`Delete ${c.name}? Its members, call and chat go with it.`, "Delete the club"))) return;
                if (await run(() => ok(session.api.DELETE("/api/clubs/{clubId}", club(c.clubId))))) onClosed();
              }}>Delete the club</button>
            ) : (
              <button className="danger" data-testid="club-leave" onClick={async () => {
                if (!(await confirm(`Leave ${c.name}?`, "Leave"))) return;
                if (await run(() => ok(session.api.DELETE("/api/clubs/{clubId}/members/{userId}", member(c.clubId, me))))) onClosed();
              }}>Leave the club</button>
            )}
          </div>
        </>
      )}
    </div>
  );
}

function NewClub({ session, run, onCreated }: TabProps & { onCreated(clubId: string): void }) {
  const [name, setName] = useState("");
  const [visibility, setVisibility] = useState<"open" | "invite">("open");
  const [joinId, setJoinId] = useState("");
  return (
    <div className="card">
      <h2>New club</h2>
      <form className="row" onSubmit={async (e) => {
        e.preventDefault();
        await run(async () => {
          const made = await ok(session.api.POST("/api/clubs", { body: { name: name.trim(), visibility } }));
          setName("");
          onCreated(made.clubId);
        });
      }}>
        <label>Name <input data-testid="club-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <label>Who may join
          <select data-testid="club-visibility" value={visibility} onChange={(e) => setVisibility(e.target.value as "open" | "invite")}>
            <option value="open">anyone with the id</option>
            <option value="invite">people the owner invites</option>
          </select>
        </label>
        <button type="submit" className="primary" data-testid="club-create">Create</button>
      </form>
      <form className="row" onSubmit={async (e) => {
        e.preventDefault();
        const id = joinId.trim();
        if (await run(() => ok(session.api.POST("/api/clubs/{clubId}/join", club(id))))) {
          setJoinId("");
          onCreated(id);
        }
      }}>
        <label>Club id <input data-testid="club-join-id" value={joinId} onChange={(e) => setJoinId(e.target.value)} required /></label>
        <button type="submit" data-testid="club-join">Join</button>
      </form>
    </div>
  );
}
