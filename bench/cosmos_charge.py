"""What the friends cap costs in request units on a real Cosmos DB account (not part of
`make bench`: the Cosmos-protocol test server charges a flat 1 RU for everything).

    COSMOS_ENDPOINT=https://<account>.documents.azure.com:443/ COSMOS_KEY=<key> \\
        .venv/bin/python -m bench.cosmos_charge

It creates a throwaway database (`switchboard-charge-<random>`, deleted at the end), writes
RELATIONS relation documents in one user's `friends` partition in the shape the friends service
writes them, and prints the `x-ms-request-charge` of the cap's count (one `SELECT VALUE
COUNT(1)`, what a friend request and an invite redemption run per user) beside reading every
relation (what they ran before: pages of 1,000).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

RELATIONS = 5_000


async def main() -> None:
    from azure.cosmos import PartitionKey
    from azure.cosmos.aio import CosmosClient

    endpoint, key = os.environ["COSMOS_ENDPOINT"], os.environ["COSMOS_KEY"]
    name = f"switchboard-charge-{uuid.uuid4().hex[:8]}"
    async with CosmosClient(endpoint, key) as client:
        database = await client.create_database(name)
        try:
            container = await database.create_container(
                "friends", partition_key=PartitionKey(path="/pk")
            )
            for start in range(0, RELATIONS, 100):
                await asyncio.gather(
                    *(
                        container.upsert_item(
                            {
                                "id": f"friend:f{i:05d}",
                                "pk": "owner",
                                "ownerId": "owner",
                                "userId": f"f{i:05d}",
                                "status": "blocked" if i % 10 == 0 else "accepted",
                                "displayName": f"Friend {i:05d}",
                                "communicationUserId": f"8:acs:{uuid.uuid4()}",
                                "since": "2026-11-23T12:00:00Z",
                            }
                        )
                        for i in range(start, min(start + 100, RELATIONS))
                    )
                )

            def charge() -> float:
                headers: Any = container.client_connection.last_response_headers
                return float(headers.get("x-ms-request-charge", "nan"))

            count_text = (
                'SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND NOT (IS_STRING(c["status"]) '
                'AND c["status"] = @x0)'
            )
            parameters: list[dict[str, object]] = [
                {"name": "@pk", "value": "owner"},
                {"name": "@x0", "value": "blocked"},
            ]
            counted = [
                n
                async for n in container.query_items(
                    count_text, parameters=parameters, partition_key="owner"
                )
            ]
            print(f"count ({counted[0]:,} of {RELATIONS:,} relations): {charge():.2f} RU")

            total, pages, read = 0.0, 0, 0
            pager = container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk",
                parameters=parameters[:1],
                partition_key="owner",
                max_item_count=1000,
            ).by_page()
            async for page in pager:
                read += len([item async for item in page])
                pages += 1
                total += charge()
            print(f"reading every relation ({read:,} in {pages} pages): {total:.2f} RU")
        finally:
            await client.delete_database(name)


if __name__ == "__main__":
    asyncio.run(main())
