"""A subscriber process: prints every event after `--after` as one JSON line, flushed.

python -m tests.support.subscriber URL [--after SEQ]
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio

import brains_jobs as bj


async def main(url: str, after: int) -> None:
    async with bj.Runtime(url, load_entrypoints=False, create_schema=False) as rt:
        print(json.dumps({"ready": True}), flush=True)
        async for event in rt.events(after=after):
            line = {
                "seq": event.seq,
                "job_id": event.job_id,
                "kind": event.kind.value,
                "status": event.status.value if event.status else None,
                "progress": event.progress,
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--after", type=int, default=0)
    args = parser.parse_args()
    anyio.run(main, args.url, args.after)
