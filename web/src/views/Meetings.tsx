// Meetings today: GET /api/meetings for today in the browser's time zone; join a listed meeting,
// or any Teams meeting by its link, or by meeting id and passcode.
import { useState } from "react";
import type { Meeting, Page } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

function today(): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function MeetingsTab({ session, report, openCall, openChat }: TabProps) {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const [meetings] = useLoad(
    () => session.api<Page<Meeting>>("GET", `/api/meetings?date=${today()}&tz=${encodeURIComponent(tz)}`).then((p) => p.items),
    report,
  );
  const [link, setLink] = useState("");
  const [meetingId, setMeetingId] = useState("");
  const [passcode, setPasscode] = useState("");
  const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  const join = (m: Meeting) => {
    if (m.joinUrl) openCall(m.subject, { locator: { meetingLink: m.joinUrl } });
    else if (m.joinMeetingId) openCall(m.subject, { locator: { meetingId: m.joinMeetingId, passcode: m.passcode ?? undefined } });
    else report(new Error("This meeting has neither a join link nor a meeting id."));
  };

  return (
    <>
      <div className="card" data-testid="meetings">
        <h2>Meetings today</h2>
        {meetings === null && <p className="muted">Loading…</p>}
        {meetings?.length === 0 && <p className="muted">Nothing today.</p>}
        <ul className="list">
          {meetings?.map((m) => (
            <li key={m.meetingId} data-testid={`meeting-${m.meetingId}`}>
              <span className="grow"><strong>{m.subject}</strong> <span className="muted">{time(m.start)}–{time(m.end)}</span></span>
              <button className="primary" data-testid={`meeting-join-${m.meetingId}`} onClick={() => join(m)}>Join</button>
              {m.joinMeetingId && (
                <button
                  data-testid={`meeting-join-id-${m.meetingId}`}
                  title={`Meeting ID ${m.joinMeetingId}`}
                  onClick={() => openCall(m.subject, { locator: { meetingId: m.joinMeetingId!, passcode: m.passcode ?? undefined } })}
                >
                  Join by ID
                </button>
              )}
              {m.threadId && <button onClick={() => openChat(`${m.subject} chat`, m.threadId!)}>Chat</button>}
            </li>
          ))}
        </ul>
      </div>
      <div className="card">
        <h2>Join a Teams meeting</h2>
        <form className="row" onSubmit={(e) => { e.preventDefault(); openCall("Teams meeting", { locator: { meetingLink: link.trim() } }); }}>
          <label>Meeting link <input data-testid="meeting-link" value={link} onChange={(e) => setLink(e.target.value)} required placeholder="https://teams.microsoft.com/l/meetup-join/…" /></label>
          <button type="submit" data-testid="meeting-link-join">Join by link</button>
        </form>
        <form className="row" onSubmit={(e) => { e.preventDefault(); openCall("Teams meeting", { locator: { meetingId: meetingId.replace(/\s/g, ""), passcode: passcode.trim() || undefined } }); }}>
          <label>Meeting ID <input data-testid="meeting-id" value={meetingId} onChange={(e) => setMeetingId(e.target.value)} required /></label>
          <label>Passcode <input data-testid="meeting-passcode" value={passcode} onChange={(e) => setPasscode(e.target.value)} /></label>
          <button type="submit" data-testid="meeting-id-join">Join by ID</button>
        </form>
      </div>
    </>
  );
}
