"""The ``zeroclaim`` command.

zeroclaim run [--demo]                       start the service
zeroclaim status                             ledger and log state
zeroclaim hospital keygen --keystore FILE    a hospital creates its signing key (local)
zeroclaim hospital register CODE ...         the authority registers a hospital's key
zeroclaim hospital sign BATCH --keystore FILE --out SIGNED.json
zeroclaim hospital upload SIGNED.json --url URL --api-key KEY
zeroclaim demo generate --preset small|quzhou --out DIR
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.settings import Settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.adapters.metrics import configure_logging
    from api.app import create_app
    from api.bootstrap import open_services
    from api.demo.seed import seed_demo

    configure_logging()
    services = open_services(settings)
    if args.demo:
        added = seed_demo(services)
        logging.getLogger("zeroclaim").info("demo data: %d invoices added", added)
    app = create_app(settings, services)
    print(
        f"zeroclaim on http://{settings.host}:{settings.port}  (ledger: "
        f"{settings.ledger_backend}, contract {services.ledger.address})",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from api.bootstrap import open_services

    services = open_services(settings)
    try:
        latest = services.ledger.anchored()
        print(
            json.dumps(
                {
                    "backend": settings.ledger_backend,
                    "chain_id": services.ledger.chain_id,
                    "contract": services.ledger.address,
                    "block_number": services.ledger.block_number(),
                    "log_size": services.ledger.log_size(),
                    "anchored_size": latest.size if latest else 0,
                    "anchored_root": "0x" + latest.root.hex() if latest else None,
                },
                indent=1,
            )
        )
    finally:
        services.close()
    return 0


def _password(args: argparse.Namespace) -> str:
    password = os.environ.get("ZEROCLAIM_HOSPITAL_KEY_PASSWORD") or getpass.getpass(
        "keystore password: "
    )
    if not password:
        raise SystemExit("a keystore password is required")
    return password


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    from eth_account import Account

    path = Path(args.keystore)
    if path.exists():
        raise SystemExit(f"{path} exists; refusing to overwrite a key")
    account = Account.create()
    path.write_text(json.dumps(Account.encrypt(account.key, _password(args))))
    path.chmod(0o600)
    print(json.dumps({"keystore": str(path), "address": account.address}))
    return 0


def _load_key(args: argparse.Namespace) -> bytes:
    from eth_account import Account

    return bytes(Account.decrypt(json.loads(Path(args.keystore).read_text()), _password(args)))


def _register(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    body = {
        "code": args.code,
        "name": args.name,
        "level": args.level,
        "signer": args.signer,
        "valid_from": args.valid_from or datetime.now(UTC).isoformat(),
    }
    token = args.admin_token or os.environ.get("ZEROCLAIM_ADMIN_TOKEN", "")
    response = httpx.post(
        f"{args.url}/api/v1/admin/hospitals",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    if response.status_code != 201:
        print(response.text, file=sys.stderr)
        return 1
    print(json.dumps({**response.json(), "note": "the API key is shown once; keep it secret"}))
    return 0


def _sign(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import Progress

    from api.adapters.hospital_files import read_batch_file, sign_item
    from verifier.canonical import Domain

    items = read_batch_file(Path(args.batch).read_text(), args.batch)
    key = _load_key(args)
    domain = Domain(args.chain_id, args.contract)
    signed = []
    with Progress() as progress:
        task = progress.add_task("signing", total=len(items))
        for item in items:
            signed.append(sign_item(item, key, domain))
            progress.advance(task)
    Path(args.out).write_text(json.dumps({"items": signed}, ensure_ascii=False))
    print(json.dumps({"signed": len(signed), "out": args.out}))
    return 0


def _sign_void(args: argparse.Namespace, settings: Settings) -> int:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from api.read.invoices import BillReference, invoice_key
    from chain.ledger import void_typed_data
    from verifier.canonical import invoice_id

    named = invoice_key(args.invoice)
    if isinstance(named, BillReference):
        if args.hospital is None:
            raise SystemExit("name the hospital: --hospital H..., or HOSPITAL:BILLCODE-BILLNUMBER")
        try:
            named = invoice_id(args.hospital, named.bill_code, named.bill_number)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    if named is None:
        raise SystemExit(
            f"{args.invoice!r} is neither BILLCODE-BILLNUMBER, HOSPITAL:BILLCODE-BILLNUMBER "
            "nor an invoice id (0x + 64 hex digits)"
        )
    data = void_typed_data(
        {
            "name": "zeroclaim",
            "version": "1",
            "chainId": args.chain_id,
            "verifyingContract": args.contract,
        },
        named,
        bytes.fromhex(args.red.removeprefix("0x")),
    )
    signed = Account.sign_message(encode_typed_data(full_message=data), _load_key(args))
    print(
        json.dumps(
            {
                "invoice": args.invoice,
                "invoice_id": "0x" + named.hex(),
                "red_invoice_id": args.red,
                "signature": "0x" + bytes(signed.signature).hex(),
            }
        )
    )
    return 0


def _upload(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import Progress

    from api.adapters.hospital_files import HospitalClient, read_batch_file

    items = read_batch_file(Path(args.batch).read_text(), args.batch)
    client = HospitalClient(args.url, args.api_key or os.environ["ZEROCLAIM_API_KEY"])
    with Progress() as progress:
        task = progress.add_task("uploading", total=len(items))
        results = client.upload(
            items, chunk=args.chunk, progress=lambda n: progress.advance(task, n)
        )
    refused = [r for r in results if r["status"] == "refused"]
    for r in refused:
        for p in r["problems"]:
            print(
                f"refused {r['reference']} ({r['code']}): {p['path']}: {p['reason']}",
                file=sys.stderr,
            )
    print(json.dumps({"uploaded": len(results), "refused": len(refused)}))
    return 1 if refused else 0


def _print_verdict(body: dict[str, Any]) -> None:
    marks = {"passed": "✓", "failed": "✗", "skipped": "–", "not_run": "·"}
    for step in body["steps"]:
        print(f"{marks[step['status']]} {step['step']:<12} {step['message_zh']}")
        print(f"  {'':<12} {step['message_en']}")
    verdict = "VALID 有效" if body["valid"] else f"INVALID 无效 (step {body['failed_step']})"
    count = body.get("verification_count")
    print(f"{verdict}" + (f"; verified {count} times 查验次数 {count}" if count else ""))


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    source_path = Path(args.source)
    is_image = source_path.suffix.lower() in (".png", ".jpg", ".jpeg") and source_path.exists()
    if args.offline:
        from api.flows.verify import photo_reader
        from verifier.pipeline import verify
        from verifier.trust_list import TrustListError, load_trust_list

        if not args.trust_list or not args.authority:
            raise SystemExit("--offline needs --trust-list FILE and --authority ADDRESS")
        try:
            trust = load_trust_list(
                Path(args.trust_list).read_bytes(), args.authority, datetime.now(UTC)
            )
        except TrustListError as exc:
            print(f"trust list refused: {exc}", file=sys.stderr)
            return 2
        source: bytes | str = source_path.read_bytes() if is_image else args.source
        verdict = verify(
            source, judge=trust, facts=None, domain=trust.domain, read_image=photo_reader()
        )
        body = verdict.as_json()
    else:
        import httpx

        if is_image:
            response = httpx.post(
                f"{args.url}/api/v1/verify/image",
                content=source_path.read_bytes(),
                headers={"Content-Type": "image/jpeg"},
                timeout=60,
            )
        else:
            response = httpx.post(
                f"{args.url}/api/v1/verify", json={"qr_text": args.source}, timeout=60
            )
        if response.status_code != 200:
            print(response.text, file=sys.stderr)
            return 2
        body = response.json()
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=1))
    else:
        _print_verdict(body)
    return 0 if body["valid"] else 1


def _demo_generate(args: argparse.Namespace, settings: Settings) -> int:
    from api.demo import data as demo_data
    from api.demo import seed as demo

    dataset = demo_data.generate(args.seed, args.preset)
    summary = demo.write_dataset(dataset, Path(args.out))
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zeroclaim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the service")
    run.add_argument("--demo", action="store_true", help="seed demo data on a fresh ledger")
    run.set_defaults(handler=_run)
    sub.add_parser("status", help="print the ledger and log state").set_defaults(handler=_status)

    hospital = sub.add_parser("hospital", help="hospital keys, signing and upload")
    hsub = hospital.add_subparsers(dest="hospital_command", required=True)
    keygen = hsub.add_parser("keygen", help="create the hospital's encrypted signing key")
    keygen.add_argument("--keystore", required=True)
    keygen.set_defaults(handler=_keygen)
    register = hsub.add_parser("register", help="(authority) register a hospital's key on chain")
    register.add_argument("code")
    register.add_argument("--name", required=True)
    register.add_argument(
        "--level", required=True, choices=["township", "primary", "secondary", "tertiary"]
    )
    register.add_argument("--signer", required=True, help="the hospital key's address")
    register.add_argument("--valid-from", help="ISO 8601 with timezone; default now")
    register.add_argument("--url", default="http://127.0.0.1:8000")
    register.add_argument("--admin-token", help="default: $ZEROCLAIM_ADMIN_TOKEN")
    register.set_defaults(handler=_register)
    sign = hsub.add_parser("sign", help="sign a JSON or CSV batch with the hospital key")
    sign.add_argument("batch")
    sign.add_argument("--keystore", required=True)
    sign.add_argument("--out", required=True)
    sign.add_argument("--chain-id", type=int, required=True)
    sign.add_argument("--contract", required=True, help="the ledger contract (GET /api/v1/ledger)")
    sign.set_defaults(handler=_sign)
    sign_void = hsub.add_parser("sign-void", help="sign a red-letter reversal (红冲) locally")
    sign_void.add_argument(
        "invoice",
        help="the invoice to void: HOSPITAL:BILLCODE-BILLNUMBER, its id (0x + 64 hex), or "
        "BILLCODE-BILLNUMBER with --hospital",
    )
    sign_void.add_argument("--hospital", help="the issuing hospital's code (H + 11 digits)")
    sign_void.add_argument("--red", required=True, help="the red invoice's id (0x + 64 hex)")
    sign_void.add_argument("--keystore", required=True)
    sign_void.add_argument("--chain-id", type=int, required=True)
    sign_void.add_argument("--contract", required=True)
    sign_void.set_defaults(handler=_sign_void)
    upload = hsub.add_parser("upload", help="upload a signed batch")
    upload.add_argument("batch")
    upload.add_argument("--url", default="http://127.0.0.1:8000")
    upload.add_argument("--api-key", help="default: $ZEROCLAIM_API_KEY")
    upload.add_argument("--chunk", type=int, default=500)
    upload.set_defaults(handler=_upload)

    verify = sub.add_parser("verify", help="verify an invoice QR (text or photo)")
    verify.add_argument("source", help="the QR text, or a PNG/JPEG photo of the code")
    verify.add_argument(
        "--offline",
        action="store_true",
        help="no server, no chain: signature and key validity only",
    )
    verify.add_argument("--trust-list", help="the authority's signed trust list (offline)")
    verify.add_argument("--authority", help="the authority's address you trust (offline)")
    verify.add_argument("--url", default="http://127.0.0.1:8000")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(handler=_verify)

    demo = sub.add_parser("demo", help="demo data")
    dsub = demo.add_subparsers(dest="demo_command", required=True)
    generate = dsub.add_parser("generate", help="write a Quzhou-shaped synthetic dataset")
    generate.add_argument("--preset", default="small", choices=["small", "quzhou"])
    generate.add_argument("--seed", type=int, default=2025)
    generate.add_argument("--out", required=True)
    generate.set_defaults(handler=_demo_generate)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return int(args.handler(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
