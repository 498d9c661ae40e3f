// Profile: GET /api/me, PATCH /api/me {displayName}.
import { useState } from "react";
import type { Profile } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function ProfileTab({ session, report }: TabProps) {
  const [profile, reload] = useLoad(() => session.api<Profile>("GET", "/api/me"), report);
  const [name, setName] = useState("");
  if (!profile) return <p className="muted">Loading…</p>;
  return (
    <div className="card" data-testid="profile">
      <h2>Profile</h2>
      <p>User id <code data-testid="profile-user">{profile.userId}</code></p>
      <p>Display name <strong data-testid="profile-name">{profile.displayName}</strong></p>
      <p>ACS identity <code data-testid="profile-acs">{profile.communicationUserId ?? "—"}</code></p>
      <p>Phone <span data-testid="profile-phone">{profile.phoneNumber ?? "—"}</span> {profile.phoneVerified && <span className="badge" data-testid="profile-phone-verified">verified</span>}</p>
      <PhoneForm session={session} report={report} onVerified={reload} />
      <form
        className="row"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await session.api("PATCH", "/api/me", { displayName: name.trim() });
            session.profile.displayName = name.trim();
            setName("");
            reload();
          } catch (error) {
            report(error);
          }
        }}
      >
        <label>New display name <input data-testid="profile-new-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <button type="submit" data-testid="profile-save">Save</button>
      </form>
    </div>
  );
}

/** POST /api/me/phone sends a code by SMS (in dev mode: GET /api/dev/outbox); POST …/verify. */
function PhoneForm({ session, report, onVerified }: Pick<TabProps, "session" | "report"> & { onVerified(): void }) {
  const [number, setNumber] = useState("");
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(false);
  return (
    <form
      className="row"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          if (!sent) {
            await session.api("POST", "/api/me/phone", { phoneNumber: number.trim() });
            setSent(true);
          } else {
            await session.api("POST", "/api/me/phone/verify", { code: code.trim() });
            setSent(false);
            setCode("");
            onVerified();
          }
        } catch (error) {
          report(error);
        }
      }}
    >
      <label>Phone number (E.164) <input data-testid="phone-number" value={number} onChange={(e) => setNumber(e.target.value)} required placeholder="+14255550123" disabled={sent} /></label>
      {sent && <label>Code from the SMS <input data-testid="phone-code" value={code} onChange={(e) => setCode(e.target.value)} required /></label>}
      <button type="submit" data-testid="phone-submit">{sent ? "Verify" : "Send a code"}</button>
    </form>
  );
}
