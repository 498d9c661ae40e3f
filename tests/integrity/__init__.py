"""Integrity checks: read every container of a store and list what breaks an invariant of the
reaction layer (docs/reactions.md). Each module exposes `async def check(store, chat_provider)
-> list[str]`: an empty list means the store is consistent."""
