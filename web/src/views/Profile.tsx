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
      <p>Phone {profile.phoneNumber ?? "—"} {profile.phoneVerified && <span className="badge">verified</span>}</p>
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
