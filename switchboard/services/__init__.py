"""Domain services: the rules of Switchboard, given ports by construction.

Nothing here imports azure.functions, reads environment variables or touches an SDK.
"""
