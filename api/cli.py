"""The ``zeroclaim`` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from api.settings import Settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from api.demo import seed_demo
    from api.services import open_services

    services = open_services(settings)
    if args.demo:
        added = seed_demo(services)
        logging.getLogger("zeroclaim").info("demo data: %d invoice leaves added", added)
    app = create_app(settings, services)
    print(
        f"zeroclaim on http://{settings.host}:{settings.port}  (ledger: {settings.ledger_backend},"
        f" contract {services.session.ledger.address})",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import open_services

    services = open_services(settings)
    try:
        latest = services.sequencer.anchored()
        print(
            json.dumps(
                {
                    "backend": settings.ledger_backend,
                    "chain_id": services.session.backend.chain_id,
                    "contract": services.session.ledger.address,
                    "block_number": services.session.backend.block_number(),
                    "log_size": services.log.size,
                    "anchored_size": latest.size if latest else 0,
                    "anchored_root": "0x" + latest.root.hex() if latest else None,
                },
                indent=1,
            )
        )
    finally:
        services.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zeroclaim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the service")
    run.add_argument("--demo", action="store_true", help="seed demo data on a fresh ledger")
    run.set_defaults(handler=_run)
    status = sub.add_parser("status", help="print the ledger and log state")
    status.set_defaults(handler=_status)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
