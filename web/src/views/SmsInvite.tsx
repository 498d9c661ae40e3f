// An SMS invitation (POST /api/invites/sms): the join link of a club or a meeting, texted to a
// number. In dev mode nothing leaves the server: the message is in the outbox, linked here.
import { useState } from "react";
import { ok } from "../api/client";
import type { TabProps } from "../App";
import { OutboxLink } from "./Profile";

export function SmsInvite({ session, run, devMode, target }: TabProps & { target: { clubId: string } | { meetingId: string } }) {
  const [to, setTo] = useState("");
  const [sent, setSent] = useState<string | null>(null);
  return (
    <form
      className="row"
      data-testid="sms-invite"
      onSubmit={async (e) => {
        e.preventDefault();
        const number = to.trim();
        if (await run(() => ok(session.api.POST("/api/invites/sms", { body: { to: number, ...target } })))) {
          setSent(number);
          setTo("");
        }
      }}
    >
      <label>Invite by SMS <input data-testid="sms-invite-to" type="tel" value={to} onChange={(e) => setTo(e.target.value)} required placeholder="+14255550123" /></label>
      <button type="submit" data-testid="sms-invite-send">Send the link</button>
      {sent && (
        <p className="muted full" data-testid="sms-invite-sent">
          Invitation sent to {sent}.{devMode && <> Dev mode: it is in the outbox — <OutboxLink />.</>}
        </p>
      )}
    </form>
  );
}
