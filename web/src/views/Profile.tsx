// Profile: GET /api/me, PATCH /api/me {displayName}, phone verification by SMS code, revoking
// the caller's ACS tokens and erasing the account (DELETE /api/me), each asked twice.
import { useState } from "react";
import { ok } from "../api/client";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

/** The dev server's SMS outbox (GET /api/dev/outbox): where the code goes in dev mode. */
export function OutboxLink() {
  return (
    <a href="/api/dev/outbox" target="_blank" rel="noreferrer" data-testid="outbox-link">
      open the SMS outbox
    </a>
  );
}

export function ProfileTab(props: TabProps) {
  const { session, report, run, confirm, notify } = props;
  const [profile, reload] = useLoad(() => ok(session.api.GET("/api/me")), report);
  const [name, setName] = useState("");
  if (!profile) return <p className="muted">Loading…</p>;
  return (
    <>
      <div className="card" data-testid="profile">
        <h2>Profile</h2>
        <dl className="facts">
          <dt>User id</dt>
          <dd><code data-testid="profile-user">{profile.userId}</code></dd>
          <dt>Display name</dt>
          <dd><strong data-testid="profile-name">{profile.displayName}</strong></dd>
          <dt>ACS identity</dt>
          <dd><code className="wrap" data-testid="profile-acs">{profile.communicationUserId ?? "—"}</code></dd>
          <dt>Phone</dt>
          <dd>
            <span data-testid="profile-phone">{profile.phoneNumber ?? "—"}</span>{" "}
            {profile.phoneVerified && <span className="badge" data-testid="profile-phone-verified">verified</span>}
          </dd>
        </dl>
        <form
          className="row"
          onSubmit={async (e) => {
            e.preventDefault();
            const saved = await run(async () => {
              const updated = await ok(session.api.PATCH("/api/me", { body: { displayName: name.trim() } }));
              session.profile.displayName = updated.displayName;
            });
            if (saved) {
              setName("");
              reload();
            }
          }}
        >
          <label>New display name <input data-testid="profile-new-name" value={name} onChange={(e) => setName(e.target.value)} required /></label>
          <button type="submit" data-testid="profile-save">Save</button>
        </form>
      </div>
      <div className="card">
        <h2>Phone number</h2>
        <PhoneForm {...props} onVerified={reload} />
      </div>
      <div className="card">
        <h2>Account</h2>
        <div className="row">
          <button
            data-testid="tokens-revoke"
            onClick={async () => {
              if (!(await confirm("Revoke every ACS token issued to you so far? Open calls and chats stop.", "Revoke"))) return;
              const revoked = await run(async () => {
                await ok(session.api.POST("/api/token/revoke"));
                await session.renewCredential();
              });
              if (revoked) notify("Every ACS token issued to you so far is revoked; this page now uses a new one.");
            }}
          >
            Revoke my ACS tokens
          </button>
          <button
            className="danger"
            data-testid="account-erase"
            onClick={async () => {
              if (!(await confirm("Erase your account: your profile, friends, clubs, meetings and ACS identity? This cannot be undone.", "Erase my account"))) return;
              if (await run(() => ok(session.api.DELETE("/api/me")))) {
                await session.auth.signOut();
                location.reload();
              }
            }}
          >
            Erase my account
          </button>
        </div>
      </div>
    </>
  );
}

/** POST /api/me/phone sends a code by SMS (in dev mode: the outbox); POST …/verify. */
function PhoneForm({ session, run, devMode, onVerified }: TabProps & { onVerified(): void }) {
  const [number, setNumber] = useState("");
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(false);
  return (
    <form
      className="row"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!sent) {
          if (await run(() => ok(session.api.POST("/api/me/phone", { body: { phoneNumber: number.trim() } })))) setSent(true);
        } else if (await run(() => ok(session.api.POST("/api/me/phone/verify", { body: { code: code.trim() } })))) {
          setSent(false);
          setCode("");
          onVerified();
        }
      }}
    >
      <label>Phone number (E.164) <input data-testid="phone-number" type="tel" value={number} onChange={(e) => setNumber(e.target.value)} required placeholder="+14255550123" disabled={sent} /></label>
      {sent && <label>Code from the SMS <input data-testid="phone-code" inputMode="numeric" value={code} onChange={(e) => setCode(e.target.value)} required /></label>}
      <button type="submit" data-testid="phone-submit">{sent ? "Verify" : "Send a code"}</button>
      {sent && <button type="button" onClick={() => setSent(false)}>Change number</button>}
      {sent && devMode && (
        <p className="muted full" data-testid="phone-outbox">Dev mode: no SMS leaves this server; the code is in the outbox — <OutboxLink />.</p>
      )}
    </form>
  );
}
