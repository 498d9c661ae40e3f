// Meetings: the caller's agenda for a day (GET /api/meetings, the browser's time zone), each
// meeting joined by its link or its id and passcode, its chat, an SMS invitation, and — for its
// organizer — cancelling it (asked first); scheduling a Teams meeting, importing one scheduled in
// Outlook or Teams (either link form), and joining any Teams meeting by link or id. A
// `?meetingId=` link opens that meeting above the agenda.
import { useState } from "react";
import { ApiError, Meeting, ok } from "../api/client";
import type { TabProps } from "../App";
import { SmsInvite } from "./SmsInvite";
import { useLoad } from "./useList";

const pad = (n: number) => String(n).padStart(2, "0");
function localDate(when = new Date()): string {
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
}
function nextHalfHour(): string {
  const when = new Date(Date.now() + 30 * 60_000);
  return `${pad(when.getHours())}:${when.getMinutes() < 30 ? "00" : "30"}`;
}
const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const meetingPath = (meetingId: string) => ({ params: { path: { meetingId } } });

export function MeetingsTab(props: TabProps) {
  const { session, report, link } = props;
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const [date, setDate] = useState(localDate());
  const [meetings, reload] = useLoad(
    () => ok(session.api.GET("/api/meetings", { params: { query: { date, tz } } })).then((p) => p.items),
    report,
    date,
  );
  const linked = link && "meetingId" in link ? link.meetingId : null;
  const [shown, setShown] = useState<string | null>(linked);

  return (
    <>
      {shown && <LinkedMeeting key={shown} {...props} meetingId={shown} onClose={() => setShown(null)} onChanged={reload} />}
      <div className="card" data-testid="meetings">
        <div className="row between">
          <h2>{date === localDate() ? "Meetings today" : "Meetings"}</h2>
          <label className="inline">Day <input type="date" data-testid="meetings-date" value={date} onChange={(e) => e.target.value && setDate(e.target.value)} /></label>
        </div>
        {meetings === null && <p className="muted">Loading…</p>}
        {meetings?.length === 0 && <p className="muted">{date === localDate() ? "Nothing today." : "Nothing that day."}</p>}
        <ul className="list">
          {meetings?.map((m) => <MeetingRow key={m.meetingId} {...props} meeting={m} onChanged={reload} />)}
        </ul>
      </div>
      <ScheduleForm {...props} mode="schedule" onDone={(m) => { setDate(localDate(new Date(m.start))); reload(); }} />
      <ScheduleForm {...props} mode="import" onDone={(m) => { setDate(localDate(new Date(m.start))); reload(); }} />
      <JoinAny {...props} />
    </>
  );
}

function LinkedMeeting(props: TabProps & { meetingId: string; onClose(): void; onChanged(): void }) {
  const { session, report, meetingId, onClose, onChanged } = props;
  const [missing, setMissing] = useState(false);
  const [meeting] = useLoad(async () => {
    try {
      return await ok(session.api.GET("/api/meetings/{meetingId}", meetingPath(meetingId)));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        setMissing(true);
        return null;
      }
      throw error;
    }
  }, report);
  return (
    <div className="card" data-testid="meeting-linked">
      <div className="row between">
        <h2>Meeting from your link</h2>
        <button onClick={onClose}>Close</button>
      </div>
      {missing && <p>No meeting <code className="wrap">{meetingId}</code> for you: it does not exist, or you are not invited to it.</p>}
      {!missing && !meeting && <p className="muted">Loading…</p>}
      {meeting && (
        <ul className="list">
          <MeetingRow {...props} meeting={meeting} onChanged={() => { onChanged(); onClose(); }} />
        </ul>
      )}
    </div>
  );
}

function MeetingRow(props: TabProps & { meeting: Meeting; onChanged(): void }) {
  const { session, run, confirm, openCall, openChat, meeting: m, onChanged, report } = props;
  const [sms, setSms] = useState(false);
  const registry = `The meeting is registered with Switchboard (${m.provider === "local" ? "the local meeting provider" : "Microsoft Teams"}); its invitees see it in their agenda.`;
  const join = () => {
    if (m.joinUrl) openCall(m.subject, { locator: { meetingLink: m.joinUrl } }, { registry });
    else if (m.joinMeetingId) openCall(m.subject, { locator: { meetingId: m.joinMeetingId, passcode: m.passcode ?? undefined } }, { registry });
    else report(new Error("This meeting has neither a join link nor a meeting id."));
  };
  return (
    <li data-testid={`meeting-${m.meetingId}`}>
      <span className="grow">
        <strong>{m.subject}</strong> <span className="muted">{new Date(m.start).toLocaleDateString()} {time(m.start)}–{time(m.end)} · by {m.organizerId}</span>
      </span>
      <span className="actions">
        <button className="primary" data-testid={`meeting-join-${m.meetingId}`} onClick={join}>Join</button>
        {m.joinMeetingId && (
          <button
            data-testid={`meeting-join-id-${m.meetingId}`}
            title={`Meeting ID ${m.joinMeetingId}`}
            onClick={() => openCall(m.subject, { locator: { meetingId: m.joinMeetingId!, passcode: m.passcode ?? undefined } }, { registry })}
          >
            Join by ID
          </button>
        )}
        {m.threadId && <button onClick={() => openChat(`${m.subject} chat`, m.threadId!, `The meeting's chat thread is known (${m.threadId}).`)}>Chat</button>}
        <button data-testid={`meeting-sms-${m.meetingId}`} onClick={() => setSms(!sms)}>Invite by SMS</button>
        {m.organizerId === session.profile.userId && (
          <button
            className="danger"
            data-testid={`meeting-cancel-${m.meetingId}`}
            onClick={async () => {
              if (!(await confirm(`Cancel "${m.subject}"? Its invitees lose it${m.provider === "local" ? "" : ", and Teams cancels it too"}.`, "Cancel the meeting"))) return;
              await run(() => ok(session.api.DELETE("/api/meetings/{meetingId}", meetingPath(m.meetingId))));
              onChanged();
            }}
          >
            Cancel
          </button>
        )}
      </span>
      {sms && <div className="full"><SmsInvite {...props} target={{ meetingId: m.meetingId }} /></div>}
    </li>
  );
}

function ScheduleForm({ session, run, notify, mode, onDone }: TabProps & { mode: "schedule" | "import"; onDone(m: Meeting): void }) {
  const [subject, setSubject] = useState("");
  const [joinUrl, setJoinUrl] = useState("");
  const [date, setDate] = useState(localDate());
  const [start, setStart] = useState(nextHalfHour());
  const [minutes, setMinutes] = useState(30);
  const [invitees, setInvitees] = useState("");
  const id = (name: string) => `${mode}-${name}`;
  return (
    <div className="card">
      <h2>{mode === "schedule" ? "Schedule a Teams meeting" : "Add a meeting scheduled in Outlook or Teams"}</h2>
      {mode === "import" && (
        <p className="muted">Its join link, in either form: <code>…/l/meetup-join/…</code> or <code>…/meet/&lt;id&gt;?p=&lt;passcode&gt;</code>.</p>
      )}
      <form
        className="row"
        data-testid={`${mode}-form`}
        onSubmit={async (e) => {
          e.preventDefault();
          const begins = new Date(`${date}T${start}`);
          const body = {
            subject: subject.trim(),
            start: begins.toISOString(),
            end: new Date(begins.getTime() + minutes * 60_000).toISOString(),
            invitees: invitees.split(/[\s,]+/).filter(Boolean),
          };
          await run(async () => {
            const made =
              mode === "schedule"
                ? await ok(session.api.POST("/api/meetings", { body }))
                : await ok(session.api.POST("/api/meetings/import", { body: { ...body, joinUrl: joinUrl.trim() } }));
            notify(`"${made.subject}" is in your agenda${made.invitees.length ? ` and ${made.invitees.length} invitee(s)'` : ""}.`);
            setSubject("");
            setJoinUrl("");
            setInvitees("");
            onDone(made);
          });
        }}
      >
        {mode === "import" && (
          <label className="wide">Join link <input data-testid={id("link")} value={joinUrl} onChange={(e) => setJoinUrl(e.target.value)} required placeholder="https://teams.microsoft.com/meet/…?p=…" /></label>
        )}
        <label>Subject <input data-testid={id("subject")} value={subject} onChange={(e) => setSubject(e.target.value)} required /></label>
        <label>Day <input type="date" data-testid={id("date")} value={date} onChange={(e) => setDate(e.target.value)} required /></label>
        <label>Starts <input type="time" data-testid={id("start")} value={start} onChange={(e) => setStart(e.target.value)} required /></label>
        <label>Length
          <select data-testid={id("minutes")} value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
            {[15, 30, 45, 60, 90, 120].map((n) => <option key={n} value={n}>{n} min</option>)}
          </select>
        </label>
        <label className="wide">Invitees (user ids) <input data-testid={id("invitees")} value={invitees} onChange={(e) => setInvitees(e.target.value)} placeholder="bob, carol" /></label>
        <button type="submit" className="primary" data-testid={id("submit")}>{mode === "schedule" ? "Schedule" : "Add"}</button>
      </form>
    </div>
  );
}

function JoinAny({ openCall }: TabProps) {
  const [link, setLink] = useState("");
  const [meetingId, setMeetingId] = useState("");
  const [passcode, setPasscode] = useState("");
  return (
    <div className="card">
      <h2>Join a Teams meeting</h2>
      <form className="row" onSubmit={(e) => { e.preventDefault(); openCall("Teams meeting", { locator: { meetingLink: link.trim() } }); }}>
        <label className="wide">Meeting link <input data-testid="meeting-link" value={link} onChange={(e) => setLink(e.target.value)} required placeholder="https://teams.microsoft.com/l/meetup-join/…" /></label>
        <button type="submit" data-testid="meeting-link-join">Join by link</button>
      </form>
      <form className="row" onSubmit={(e) => { e.preventDefault(); openCall("Teams meeting", { locator: { meetingId: meetingId.replace(/\s/g, ""), passcode: passcode.trim() || undefined } }); }}>
        <label>Meeting ID <input data-testid="meeting-id" value={meetingId} onChange={(e) => setMeetingId(e.target.value)} required /></label>
        <label>Passcode <input data-testid="meeting-passcode" value={passcode} onChange={(e) => setPasscode(e.target.value)} /></label>
        <button type="submit" data-testid="meeting-id-join">Join by ID</button>
      </form>
    </div>
  );
}
