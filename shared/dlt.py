"""Putting dead-lettered records back once their cause is fixed (`python -m services.X replay-dlt`).

A record in `<topic>.dlt` is republished to the topic it came from, with its key, value and headers (plus
where it was replayed from). Progress is the committed offset of a replay group of its own, so running the
command twice republishes nothing twice; should it die between a send and its commit, the record goes out
again and every consumer's inbox (keyed by event id) applies it once.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.outbox import make_producer


async def replay_dead_letters(
    bootstrap: str, topic: str, only_consumer: str | None = None, idle_polls: int = 2
) -> int:
    """Republish what `<topic>.dlt` holds beyond the last replay (only what `only_consumer` set aside, if
    given); returns how many records went back. Stops when the topic has been quiet `idle_polls` times."""
    dlt = f"{topic}.dlt"
    reader = AIOKafkaConsumer(
        dlt,
        bootstrap_servers=bootstrap,
        # a filtered replay keeps offsets of its own: it must not move past what others set aside
        group_id=f"dlt-replay.{dlt}.{only_consumer or '*'}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    producer = make_producer(bootstrap)
    await producer.start()
    await reader.start()
    replayed, quiet, unassigned = 0, 0, 0
    try:
        while quiet < idle_polls:
            batches = await reader.getmany(timeout_ms=1000, max_records=500)
            if not batches:
                unassigned += 0 if reader.assignment() else 1
                if reader.assignment() or unassigned > 60:  # quiet counts once the partitions are ours
                    quiet += 1
                continue
            quiet = 0
            sends = []
            for records in batches.values():
                for r in records:
                    headers = dict(r.headers)
                    if only_consumer and headers.get("consumer", b"").decode() != only_consumer:
                        continue
                    original = headers.get("original_topic", topic.encode()).decode()
                    sends.append(
                        await producer.send(
                            original,
                            value=r.value,
                            key=r.key,
                            headers=[
                                *r.headers,
                                ("replayed_from", f"{dlt}:{r.partition}:{r.offset}".encode()),
                            ],
                        )
                    )
            for sent in sends:
                await sent  # acknowledged before the offsets move
            replayed += len(sends)
            await reader.commit(
                {TopicPartition(dlt, tp.partition): records[-1].offset + 1 for tp, records in batches.items()}
            )
    finally:
        await reader.stop()
        await producer.stop()
    return replayed
