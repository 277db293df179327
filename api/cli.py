"""The ``zeroclaim`` command.

zeroclaim run [--demo]                       start the service
zeroclaim status                             ledger and log state
zeroclaim hospital keygen --keystore FILE    a hospital creates its signing key (local)
zeroclaim hospital register CODE ...         the authority registers a hospital's key
zeroclaim hospital sign BATCH --keystore FILE --out SIGNED.json
zeroclaim hospital upload SIGNED.json --url URL --api-key KEY
zeroclaim demo generate --preset small|quzhou --out DIR

The keystore password is read from $ZEROCLAIM_HOSPITAL_KEY_PASSWORD, else asked in the
terminal. Exit status: 0 done; 1 done, but invoices (or the request) were refused, each
named on stderr; 2 nothing done: fix the command line, password, keystore, batch file or
credentials; 3 the service could not be reached, did not answer in time or failed: try again.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.adapters.hospital_files import (
    CredentialsRefused,
    HospitalSideError,
    KeystoreExists,
    KeystoreMissing,
    RequestRefused,
    ServiceError,
)
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


#: Exit statuses (documented in the module docstring and the README's hospital section).
EXIT_REFUSED = 1  # done, but invoices (or the request) were refused, each named on stderr
EXIT_INPUT = 2  # nothing done: the command line, a password, keystore, batch file, credential
EXIT_SERVICE = 3  # the service unreachable, silent or failing: try again later

PASSWORD_VARIABLE = "ZEROCLAIM_HOSPITAL_KEY_PASSWORD"


class CommandFailed(Exception):
    """Raised when a command cannot go on; the message is the one sentence shown on stderr,
    ``status`` the exit status."""

    def __init__(self, sentence: str, status: int = EXIT_INPUT) -> None:
        super().__init__(sentence)
        self.status = status


def _exit_status(exc: Exception) -> int:
    if isinstance(exc, CommandFailed):
        return exc.status
    if isinstance(exc, RequestRefused):
        return EXIT_REFUSED
    if isinstance(exc, ServiceError) and not isinstance(exc, CredentialsRefused):
        return EXIT_SERVICE
    return EXIT_INPUT


def _has_terminal() -> bool:
    """Whether getpass can ask (it reads /dev/tty, else falls back to stdin with a warning)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return sys.stdin.isatty()  # no /dev/tty (Windows): getpass uses the console
    os.close(fd)
    return True


def _password(confirm: bool = False) -> str:
    """The keystore password: $ZEROCLAIM_HOSPITAL_KEY_PASSWORD, else typed in the terminal
    (twice with ``confirm``, so that a typo does not lock a new key away)."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    if not _has_terminal():
        raise CommandFailed(
            f"no keystore password: set {PASSWORD_VARIABLE} or run the command in a terminal"
        )
    try:
        password = getpass.getpass("keystore password: ")
        if confirm and password and getpass.getpass("the same password again: ") != password:
            raise CommandFailed("the two passwords differ; no key was created")
    except EOFError:
        raise CommandFailed(
            f"no keystore password was typed: type it, or set {PASSWORD_VARIABLE}"
        ) from None
    if not password:
        raise CommandFailed("the keystore password is empty")
    return password


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    from api.adapters.hospital_files import create_keystore

    path = Path(args.keystore)
    if path.exists():
        raise KeystoreExists(path)  # before asking for a password
    address = create_keystore(path, _password(confirm=True))
    print(json.dumps({"keystore": str(path), "address": address}))
    return 0


def _load_key(args: argparse.Namespace) -> bytes:
    from api.adapters.hospital_files import unlock_keystore

    path = Path(args.keystore)
    if not path.exists():
        raise KeystoreMissing(path)  # before asking for a password
    return unlock_keystore(path, _password())


def _register(args: argparse.Namespace, settings: Settings) -> int:
    from api.adapters.hospital_files import HospitalClient

    token = args.admin_token or os.environ.get("ZEROCLAIM_ADMIN_TOKEN", "")
    if not token:
        raise CommandFailed("no admin token: pass --admin-token or set ZEROCLAIM_ADMIN_TOKEN")
    body = {
        "code": args.code,
        "name": args.name,
        "level": args.level,
        "signer": args.signer,
        "valid_from": args.valid_from or datetime.now(UTC).isoformat(),
    }
    registered = HospitalClient(args.url, timeout=60).register_hospital(body, token)
    print(json.dumps({**registered, "note": "the API key is shown once; keep it secret"}))
    return 0


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal (stdout keeps the one JSON summary)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _report_refused(reference: str, code: str, problems: Iterable[tuple[str, str]]) -> None:
    """One line per problem of a refused invoice: reference, code, field path, reason."""
    for path, reason in problems:
        print(f"refused {reference} ({code}): {path}: {reason}", file=sys.stderr)


def _sign(args: argparse.Namespace, settings: Settings) -> int:
    from api.adapters.hospital_files import batch_json_bytes, read_batch_path, sign_batch
    from verifier.canonical import Domain

    items = read_batch_path(Path(args.batch))
    key = _load_key(args)
    with _progress("signing", len(items)) as advance:
        batch = sign_batch(
            items, key, Domain(args.chain_id, args.contract), advance, hospital=args.hospital
        )
    out = Path(args.out)
    try:
        # Written even when every invoice was refused, so that the file is this run's.
        out.write_bytes(batch_json_bytes(batch.signed))
    except OSError as exc:
        raise CommandFailed(f"cannot write {out} ({exc.strerror}); nothing was saved") from None
    for r in batch.refused:
        _report_refused(r.reference, r.code, ((p.path, p.reason) for p in r.problems))
    if batch.refused:
        print(
            f"{len(batch.refused)} of {len(items)} invoices were refused and not signed "
            f"(listed above); the {len(batch.signed)} signed are in {out}",
            file=sys.stderr,
        )
    print(json.dumps({"signed": len(batch.signed), "refused": len(batch.refused), "out": str(out)}))
    return EXIT_REFUSED if batch.refused else 0


def _sign_void(args: argparse.Namespace, settings: Settings) -> int:
    """Signs a reversal at the hospital: ``VoidInvoice``, or with ``--replacement`` (a partial
    refund: the bill issued for the rest) ``ReplaceInvoice``, which carries what was paid on
    the voided bill over to the replacement."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from api.read.invoices import BillReference, invoice_key
    from chain.ledger import replace_typed_data, void_typed_data
    from verifier.canonical import invoice_id

    def bill_id(text: str, what: str, of: str | None) -> tuple[bytes, str | None]:
        """The id of the bill ``text`` names (a bare reference of hospital ``of``), and its
        hospital when the text names one."""
        hospital = text.rpartition(":")[0] or None
        named = invoice_key(text)
        if isinstance(named, BillReference):
            if of is None:
                raise CommandFailed(
                    f"name the hospital of {what} {text}: --hospital H..., or "
                    "HOSPITAL:BILLCODE-BILLNUMBER"
                )
            try:
                return invoice_id(of, named.bill_code, named.bill_number), None
            except ValueError as exc:
                raise CommandFailed(str(exc)) from None
        if named is None:
            raise CommandFailed(
                f"{what} {text!r} is neither BILLCODE-BILLNUMBER, HOSPITAL:BILLCODE-BILLNUMBER "
                "nor an invoice id (0x + 64 hex digits)"
            )
        return named, hospital

    named, hospital = bill_id(args.invoice, "the invoice", args.hospital)
    red_key = invoice_key(args.red)
    if not isinstance(red_key, bytes) or not args.red.startswith("0x"):
        raise CommandFailed(f"--red {args.red!r} is not an invoice id (0x + 64 hex digits)")
    red = red_key
    domain = {
        "name": "zeroclaim",
        "version": "1",
        "chainId": args.chain_id,
        "verifyingContract": args.contract,
    }
    out = {"invoice": args.invoice, "invoice_id": "0x" + named.hex(), "red_invoice_id": args.red}
    if args.replacement is None:
        data = void_typed_data(domain, named, red)
    else:
        # The replacement is a bill of the same hospital.
        own = args.hospital or hospital
        replacement, of = bill_id(args.replacement, "the replacement", own)
        if of is not None and own is not None and of != own:
            raise CommandFailed("the replacement must be a bill of the hospital that voids")
        if replacement == named:
            raise CommandFailed("an invoice does not replace itself: name the new bill")
        data = replace_typed_data(domain, named, red, replacement)
        out |= {"replacement": args.replacement, "replacement_id": "0x" + replacement.hex()}
    signed = Account.sign_message(encode_typed_data(full_message=data), _load_key(args))
    print(json.dumps({**out, "signature": "0x" + bytes(signed.signature).hex()}))
    return 0


def _upload(args: argparse.Namespace, settings: Settings) -> int:
    from api.adapters.hospital_files import HospitalClient, read_batch_path

    api_key = args.api_key or os.environ.get("ZEROCLAIM_API_KEY")
    if not api_key:
        raise CommandFailed(
            "no API key: pass --api-key or set ZEROCLAIM_API_KEY (the authority gives a "
            "hospital its key when it registers it)"
        )
    items = read_batch_path(Path(args.batch))
    client = HospitalClient(args.url, api_key, timeout=args.timeout)
    with _progress("uploading", len(items)) as advance:
        results = client.upload(items, chunk=args.chunk, progress=advance)
    count = {s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "duplicate")}
    refused = [r for r in results if r["status"] == "refused"]
    for r in refused:
        _report_refused(
            r["reference"], r["code"], ((p["path"], p["reason"]) for p in r["problems"])
        )
    if count["duplicate"]:
        print(
            f"{count['duplicate']} of {len(results)} invoices were already there (uploaded "
            "before with the same content); the service kept their first receipt",
            file=sys.stderr,
        )
    if refused:
        print(
            f"{len(refused)} of {len(results)} invoices were refused (listed above)",
            file=sys.stderr,
        )
    summary = {
        "uploaded": len(results),
        "accepted": count["accepted"],
        "already_there": count["duplicate"],
        "refused": len(refused),
    }
    print(json.dumps(summary))
    return EXIT_REFUSED if refused else 0


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
    sign = hsub.add_parser(
        "sign", help="sign a JSON or CSV batch, or the HIS's e-bill exports, with the hospital key"
    )
    sign.add_argument("batch")
    sign.add_argument(
        "--hospital",
        help="the issuing hospital's code (H + 11 digits): needed for HIS exports, which do not"
        " name it (docs/his-export.md)",
    )
    sign.add_argument("--keystore", required=True)
    sign.add_argument("--out", required=True)
    sign.add_argument("--chain-id", type=_chain_id, required=True)
    sign.add_argument(
        "--contract", type=_address, required=True, help="the ledger contract (GET /api/v1/ledger)"
    )
    sign.set_defaults(handler=_sign)
    sign_void = hsub.add_parser("sign-void", help="sign a red-letter reversal (红冲) locally")
    sign_void.add_argument(
        "invoice",
        help="the invoice to void: HOSPITAL:BILLCODE-BILLNUMBER, its id (0x + 64 hex), or "
        "BILLCODE-BILLNUMBER with --hospital",
    )
    sign_void.add_argument("--hospital", help="the issuing hospital's code (H + 11 digits)")
    sign_void.add_argument("--red", required=True, help="the red invoice's id (0x + 64 hex)")
    sign_void.add_argument(
        "--replacement",
        help="a partial refund: the bill issued for the rest (BILLCODE-BILLNUMBER of the same "
        "hospital, or its id); what was paid on the voided bill is carried over to it",
    )
    sign_void.add_argument("--keystore", required=True)
    sign_void.add_argument("--chain-id", type=int, required=True)
    sign_void.add_argument("--contract", required=True)
    sign_void.set_defaults(handler=_sign_void)
    upload = hsub.add_parser("upload", help="upload a signed batch")
    upload.add_argument("batch")
    upload.add_argument("--url", default="http://127.0.0.1:8000")
    upload.add_argument("--api-key", help="default: $ZEROCLAIM_API_KEY")
    upload.add_argument(
        "--chunk", type=_chunk, default=500, help="invoices per request, 1 to 5000 (default 500)"
    )
    upload.add_argument(
        "--timeout", type=_seconds, default=120, help="seconds to wait for each answer (120)"
    )
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
    # httpx logs every request at INFO: noise beside the one-sentence reports on stderr.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.handler(args, _settings()))
    except (CommandFailed, HospitalSideError) as exc:
        print(f"zeroclaim: {exc}", file=sys.stderr)
        return _exit_status(exc)
    except KeyboardInterrupt:
        print("zeroclaim: interrupted", file=sys.stderr)
        return 130


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise CommandFailed(
            f"the ZEROCLAIM_* settings are refused: {where}: {first['msg']}"
        ) from None


def _number_in(
    kind: Callable[[str], Any], low: float, high: float, what: str
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_chain_id = _number_in(int, 1, 2**256 - 1, "a chain id (a positive integer)")
_chunk = _number_in(int, 1, 5000, "a chunk size from 1 to 5000")
_seconds = _number_in(float, 0.001, 86_400, "a number of seconds up to 86400")


def _address(text: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (0x + 40 hex digits)")
    return text


if __name__ == "__main__":
    sys.exit(main())
