"""The hospital commands when things go wrong: every failure is one sentence on stderr and an
exit status (1 refused in part, 2 fix the input, 3 the service: try again), never a traceback.

Against the real service process (``running_service``) wherever it can show the case; the
answers it cannot be made to give (a 503, silence, an answer that is not JSON, a failure
between two chunks) come from a small HTTP server on a real socket.
"""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.adapters import hospital_files
from api.adapters.hospital_files import (
    BatchFileInvalid,
    BatchFormat,
    read_batch_file,
    sign_item,
    write_csv_batch,
)
from api.cli import main
from tests.api.conftest import HOSPITAL, invoice_json, patient
from tests.api.test_cli import running_service
from tests.conftest import ROOT
from verifier.canonical import Domain, SignedFields, recover_signer, signing_digest
from verifier.invoice import parse_invoice

PASSWORD = "office-secret"
DOMAIN = Domain(5700, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


@dataclass(frozen=True)
class Service:
    url: str
    api_key: str
    key: LocalAccount
    domain: Domain


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service with one hospital registered (by the authority's admin API)."""
    key = Account.create()
    with running_service(tmp_path_factory.mktemp("srv")) as url:
        registered = httpx.post(
            f"{url}/api/v1/admin/hospitals",
            json={
                "code": HOSPITAL,
                "name": "衢州市人民医院",
                "level": "tertiary",
                "signer": key.address,
                "valid_from": "2024-01-01T00:00:00+08:00",
            },
            headers={"Authorization": "Bearer dev-admin-token"},
        )
        assert registered.status_code == 201, registered.text
        ledger = httpx.get(f"{url}/api/v1/ledger").json()
        domain = Domain(ledger["chain_id"], ledger["contract"])
        yield Service(url, registered.json()["api_key"], key, domain)


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", "ZEROCLAIM_API_KEY", "ZEROCLAIM_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``zeroclaim ARGS`` in this process: exit status, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def zeroclaim(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``zeroclaim ARGS`` as its own process with no terminal (a new session, stdin empty),
    as a scheduled job runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ZEROCLAIM_")}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(ROOT), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )


def keystore(path: Path, key: LocalAccount, password: str = PASSWORD) -> Path:
    """A keystore as keygen writes it, with a cheap key derivation (tests unlock it often)."""
    path.write_text(json.dumps(Account.encrypt(key.key, password, kdf="pbkdf2", iterations=2)))
    return path


def items(*numbers: int) -> list[dict[str, Any]]:
    return [{"invoice": invoice_json(n, pat=patient(n)), "patient": patient(n)} for n in numbers]


def sign_args(batch: Path, keys: Path, out: Path, domain: Domain = DOMAIN) -> list[str]:
    return [
        "hospital",
        "sign",
        str(batch),
        "--keystore",
        str(keys),
        "--out",
        str(out),
        "--chain-id",
        str(domain.chain_id),
        "--contract",
        domain.contract,
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the keystore and its password ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["keygen", "sign"])
def test_without_a_terminal_or_the_password_variable_one_sentence_names_the_variable(
    tmp_path: Path, command: str
) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"items": items(1)}))
    if command == "keygen":
        args = ["hospital", "keygen", "--keystore", "new-key.json"]
    else:
        args = sign_args(batch, keystore(tmp_path / "key.json", Account.create()), tmp_path / "o")
    done = zeroclaim(*args, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "zeroclaim: no keystore password: set ZEROCLAIM_HOSPITAL_KEY_PASSWORD or run the "
        "command in a terminal\n"
    )
    assert not (tmp_path / "new-key.json").exists() and not (tmp_path / "o").exists()


def test_keygen_with_the_password_variable_writes_a_keystore_that_sign_opens(
    tmp_path: Path,
) -> None:
    made = zeroclaim(
        "hospital",
        "keygen",
        "--keystore",
        "key.json",
        cwd=tmp_path,
        ZEROCLAIM_HOSPITAL_KEY_PASSWORD=PASSWORD,
    )
    assert made.returncode == 0, made.stderr
    address = json.loads(made.stdout)["address"]
    assert (tmp_path / "key.json").stat().st_mode & 0o777 == 0o600
    key = Account.decrypt(json.loads((tmp_path / "key.json").read_text()), PASSWORD)
    assert Account.from_key(key).address == address
    again = zeroclaim(
        "hospital",
        "keygen",
        "--keystore",
        "key.json",
        cwd=tmp_path,
        ZEROCLAIM_HOSPITAL_KEY_PASSWORD="x",
    )
    assert (again.returncode, again.stderr) == (
        2,
        "zeroclaim: key.json exists; refusing to overwrite a key\n",
    )
    assert Account.decrypt(json.loads((tmp_path / "key.json").read_text()), PASSWORD) == key


def in_a_terminal(args: list[str], typed: list[str], cwd: Path) -> tuple[int, str]:
    """``zeroclaim ARGS`` on a pseudo-terminal of its own, typing each of ``typed`` after a
    prompt (a line ending in ``: ``); the exit status and all it wrote."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ZEROCLAIM_")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.chdir(cwd)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "api.cli", *args],
            {**environ, "PYTHONPATH": str(ROOT)},
        )
    written = b""
    pending = list(typed)
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            pytest.fail(f"no prompt or end within 60 s: {written!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            break
        written += chunk
        if pending and written.endswith(b": "):
            os.write(fd, pending.pop(0).encode() + b"\n")
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), written.decode()


def test_keygen_in_a_terminal_asks_twice_and_refuses_two_different_passwords(
    tmp_path: Path,
) -> None:
    code, shown = in_a_terminal(
        ["hospital", "keygen", "--keystore", "key.json"], ["one", "other"], tmp_path
    )
    assert code == 2 and "the two passwords differ; no key was created" in shown
    assert "Traceback" not in shown and not (tmp_path / "key.json").exists()
    code, shown = in_a_terminal(["hospital", "keygen", "--keystore", "key.json"], [""], tmp_path)
    assert code == 2 and "zeroclaim: the keystore password is empty" in shown
    code, shown = in_a_terminal(
        ["hospital", "keygen", "--keystore", "key.json"], [PASSWORD, PASSWORD], tmp_path
    )
    assert code == 0, shown
    assert "keystore password: " in shown and "the same password again: " in shown
    assert PASSWORD not in shown  # not echoed
    assert Account.decrypt(json.loads((tmp_path / "key.json").read_text()), PASSWORD)


KEYSTORE_CASES = [
    ("wrong_password", "the password does not open the keystore {path} (or the file was altered)"),
    ("missing", "no keystore at {path} (create one with: zeroclaim hospital keygen --keystore)"),
    ("not_json", "{path} is not a usable keystore: not JSON (line 1, column 2: "),
    ("cut_short", "{path} is not a usable keystore: not JSON (line 1, column "),
    ("not_a_keystore", "{path} is not a usable keystore: the field 'crypto' is missing"),
    ("a_directory", "{path} is not a usable keystore: cannot be read (Is a directory)"),
]


@pytest.mark.parametrize(("case", "sentence"), KEYSTORE_CASES, ids=[c for c, _ in KEYSTORE_CASES])
def test_a_keystore_that_cannot_be_opened_is_one_sentence(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    sentence: str,
) -> None:
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    path = tmp_path / "key.json"
    good = keystore(tmp_path / "good.json", Account.create(), "another password")
    if case == "wrong_password":
        path = good
    elif case == "not_json":
        path.write_text("{")
    elif case == "cut_short":
        path.write_text(good.read_text()[:100])
    elif case == "not_a_keystore":
        path.write_text('{"version": 3}')
    elif case == "a_directory":
        path.mkdir()
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"items": items(1)}))
    code, out, err = cli(capsys, *sign_args(batch, path, tmp_path / "out.json"))
    assert (code, out) == (2, "")
    assert err.startswith("zeroclaim: " + sentence.format(path=path)) and err.count("\n") == 1
    assert not (tmp_path / "out.json").exists()


# -- signing a batch with bad invoices -------------------------------------------------------


def assert_signed_by(signed: list[dict[str, Any]], key: LocalAccount, domain: Domain) -> None:
    for item in signed:
        record_hash = SignedFields.of(parse_invoice(item["invoice"])).record_hash()
        signature = bytes.fromhex(item["signature"].removeprefix("0x"))
        assert recover_signer(signing_digest(domain, record_hash), signature) == key.address


def test_sign_writes_the_good_invoices_and_lists_each_bad_one(
    service: Service,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    keys = keystore(tmp_path / "key.json", service.key)
    batch_items: list[Any] = items(101, 102, 103)
    batch_items[1]["invoice"]["lines"][0]["amount"] = 2501  # does not add up
    batch_items[2]["invoice"]["diagnoses"] = ["not a code"]
    batch_items[2]["invoice"]["total"] = -1
    batch_items += [42, {"patient": patient(7)}, *items(104)]  # not an item; no invoice
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"items": batch_items}, ensure_ascii=False))
    out = tmp_path / "signed.json"

    code, stdout, err = cli(capsys, *sign_args(batch, keys, out, service.domain))

    assert code == 1
    assert json.loads(stdout) == {"signed": 2, "refused": 4, "out": str(out)}
    signed = json.loads(out.read_text())["items"]
    assert [s["invoice"] for s in signed] == [batch_items[0]["invoice"], batch_items[5]["invoice"]]
    assert [s["patient"] for s in signed] == [patient(101), patient(104)]
    assert_signed_by(signed, service.key, service.domain)
    lines = err.splitlines()
    assert lines[0] == (
        "refused 33082025-0000000102 (invalid_invoice): lines[0].amount: "
        "1250 fen x 2 = 2500 fen, the line says 2501"
    )
    bad_103 = [line for line in lines if line.startswith("refused 33082025-0000000103 ")]
    assert {line.split(": ")[1] for line in bad_103} >= {"total", "diagnoses[0]"}
    assert "refused ? (invalid_item): $: each item is an object with 'invoice'" in err
    assert "refused ? (invalid_invoice): $: an invoice must be a JSON object" in err
    assert (
        lines[-1]
        == f"4 of 6 invoices were refused and not signed (listed above); the 2 signed are in {out}"
    )
    assert "Traceback" not in err

    # The signed file is what the service takes.
    code, stdout, _ = cli(
        capsys, "hospital", "upload", str(out), "--url", service.url, "--api-key", service.api_key
    )
    assert (code, json.loads(stdout)["accepted"]) == (0, 2)


def test_sign_of_a_csv_batch_with_a_bad_invoice_signs_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    key = Account.create()
    batch_items = items(1, 2, 3)
    batch_items[0]["invoice"]["lines"][1]["unit_price"] = "ten"
    batch = tmp_path / "batch.csv"
    batch.write_text(write_csv_batch(batch_items))
    out = tmp_path / "signed.json"
    code, stdout, err = cli(capsys, *sign_args(batch, keystore(tmp_path / "k", key), out))
    assert (code, json.loads(stdout)["signed"], json.loads(stdout)["refused"]) == (1, 2, 1)
    assert err.startswith("refused 33082025-0000000001 (invalid_invoice): lines[1].unit_price: ")
    signed = json.loads(out.read_text())["items"]
    assert [s["invoice"]["bill_number"] for s in signed] == ["0000000002", "0000000003"]
    assert_signed_by(signed, key, DOMAIN)


def test_sign_when_every_invoice_is_refused_still_writes_this_runs_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    out = tmp_path / "signed.json"
    out.write_text('{"items": ["from an earlier run"]}')
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"invoice": {**invoice_json(1), "total": "many"}}]))
    code, stdout, _ = cli(
        capsys, *sign_args(batch, keystore(tmp_path / "k", Account.create()), out)
    )
    assert (code, json.loads(stdout)["signed"]) == (1, 0)
    assert json.loads(out.read_text()) == {"items": []}


# -- batch files that are no batch ---------------------------------------------------------------

ITEM = json.dumps(items(1)[0])
HEADER = "bill_code,bill_number,code,amount\n"
NOT_A_BATCH = [
    (
        "json_syntax",
        "b.json",
        f'{{"items": [\n  {ITEM},\n  oops\n]}}',
        "b.json, line 3: not valid JSON: Expecting value (column 3)",
    ),
    ("json_shape", "b.json", '{"invoices": []}', "b.json: is of no batch format known here ("),
    (
        "items_not_a_list",
        "b.json",
        '{"items": {"a": 1}}',
        'b.json: "items" must be a list of items',
    ),
    ("json_empty", "b.json", '{"items": []}', "b.json: holds no invoice"),
    (
        "csv_field_too_long",
        "b.csv",
        HEADER + "1,2,3,4\n5,6," + "x" * 140_000 + ",7\n",
        "b.csv, line 3: not valid CSV: field larger than field limit (131072) "
        "(row 3, the header is row 1)",
    ),
    (
        "csv_other_header",
        "b.csv",
        "name,amount\nx,1\n",
        "b.csv, line 1: not a CSV batch: the header has no bill_code and bill_number columns",
    ),
    ("csv_header_only", "b.csv", HEADER, "b.csv: holds no invoice"),
    ("empty_file", "b.csv", "", "b.csv: holds no invoice"),
    (
        "missing_file",
        "absent.json",
        None,
        "absent.json: cannot be read (No such file or directory)",
    ),
]


@pytest.mark.parametrize("command", ["sign", "upload"])
@pytest.mark.parametrize(
    ("name", "text", "sentence"),
    [case[1:] for case in NOT_A_BATCH],
    ids=[case[0] for case in NOT_A_BATCH],
)
def test_a_batch_file_that_cannot_be_read_is_one_sentence_naming_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    name: str,
    text: str | None,
    sentence: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if text is not None:
        Path(name).write_text(text)
    if command == "sign":
        args = sign_args(Path(name), tmp_path / "no-key.json", tmp_path / "out.json")
    else:  # the file is read before anything is sent: no service needed
        args = [
            "hospital",
            "upload",
            name,
            "--api-key",
            "k",
            "--url",
            f"http://127.0.0.1:{closed_port()}",
        ]
    code, out, err = cli(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith(f"zeroclaim: {sentence}") and err.count("\n") == 1, err
    assert not (tmp_path / "out.json").exists()


def test_the_format_is_told_by_content_not_by_the_file_name() -> None:
    batch_items = items(1, 2)
    assert read_batch_file(json.dumps(batch_items), "export.csv") == batch_items
    assert read_batch_file(write_csv_batch(batch_items), "export.json") == batch_items
    assert read_batch_file("\ufeff" + json.dumps({"items": batch_items}), "bom.txt") == batch_items


def test_a_new_input_format_is_one_more_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """How the HIS export will be added: a BatchFormat that recognises its own key."""
    request = json.dumps({"busNo": "MZ0001", "payer": "张三", "totalAmt": "64.50"})
    with pytest.raises(BatchFileInvalid, match=r"^his\.json: is of no batch format known here"):
        read_batch_file(request, "his.json")

    his = BatchFormat(
        "HIS e-bill request",
        lambda batch: batch.looks_like_json and "busNo" in batch.json,
        lambda batch: [{"invoice": {"bill_number": batch.json["busNo"]}}],
    )
    monkeypatch.setattr(hospital_files, "BATCH_FORMATS", (his, *hospital_files.BATCH_FORMATS))
    assert read_batch_file(request, "his.json") == [{"invoice": {"bill_number": "MZ0001"}}]
    assert read_batch_file(json.dumps(items(1)), "items.json") == items(1)


# -- uploads -------------------------------------------------------------------------------------


def signed_file(tmp_path: Path, service: Service, *numbers: int) -> Path:
    path = tmp_path / f"signed-{numbers[0]}.json"
    signed = [sign_item(item, service.key.key, service.domain) for item in items(*numbers)]
    path.write_text(json.dumps({"items": signed}, ensure_ascii=False))
    return path


def test_a_reupload_says_how_many_were_already_there(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upload = ["hospital", "upload", "--url", service.url, "--api-key", service.api_key]
    code, out, err = cli(capsys, *upload, str(signed_file(tmp_path, service, 201, 202, 203)))
    assert (code, json.loads(out), err) == (
        0,
        {"uploaded": 3, "accepted": 3, "already_there": 0, "refused": 0},
        "",
    )
    code, out, err = cli(capsys, *upload, str(signed_file(tmp_path, service, 201, 202, 203, 204)))
    assert (code, json.loads(out)) == (
        0,
        {"uploaded": 4, "accepted": 1, "already_there": 3, "refused": 0},
    )
    assert err == (
        "3 of 4 invoices were already there (uploaded before with the same content); "
        "the service kept their first receipt\n"
    )


def test_bytes_that_are_not_utf8_refuse_only_their_invoice(
    service: Service,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed = [sign_item(item, service.key.key, service.domain) for item in items(251, 252)]
    text = write_csv_batch(signed).replace("普通门诊诊查费", "BAD-NAME", 1)
    batch = tmp_path / "latin1.csv"
    batch.write_bytes(text.encode().replace(b"BAD-NAME", b"caf\xe9"))  # Latin-1, not UTF-8
    code, out, err = cli(
        capsys, "hospital", "upload", str(batch), "--url", service.url, "--api-key", service.api_key
    )
    assert (code, json.loads(out)["accepted"], json.loads(out)["refused"]) == (1, 1, 1)
    assert err.startswith("refused 33082025-0000000251 (invalid_invoice): lines[1].name: ")
    assert "not valid Unicode" in err

    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    keys = keystore(tmp_path / "key.json", service.key)
    code, out, err = cli(capsys, *sign_args(batch, keys, tmp_path / "o.json", service.domain))
    assert (code, json.loads(out)["signed"]) == (1, 1)
    assert err.startswith("refused 33082025-0000000251 (invalid_invoice): lines[1].name: ")


def test_upload_without_an_api_key_says_where_to_put_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "b.json"
    batch.write_text(json.dumps(items(1)))
    code, out, err = cli(capsys, "hospital", "upload", str(batch))
    assert (code, out) == (2, "")
    assert err == (
        "zeroclaim: no API key: pass --api-key or set ZEROCLAIM_API_KEY (the authority gives "
        "a hospital its key when it registers it)\n"
    )


def test_upload_with_a_wrong_api_key_is_refused_in_one_sentence(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = signed_file(tmp_path, service, 301)
    code, out, err = cli(
        capsys, "hospital", "upload", str(batch), "--url", service.url, "--api-key", "wrong"
    )
    assert (code, out) == (2, "")
    assert err == (
        f"zeroclaim: the service at {service.url} refused the API key "
        "(HTTP 401 api_key_invalid: this API key belongs to no hospital)\n"
    )
    code, _, err = cli(
        capsys, "hospital", "upload", str(batch), "--url", service.url, "--api-key", "键"
    )
    assert (code, err) == (
        2,
        "zeroclaim: the API key holds characters other than printable ASCII; copy it again\n",
    )


@contextmanager
def answering(*answers: tuple[int, str, str]) -> Iterator[str]:
    """An HTTP server giving ``(status, content type, body)`` answers in turn; yields its URL."""
    queue = list(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status, content_type, body = queue.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent() -> Iterator[str]:
    """A port that takes connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


UNAVAILABLE = json.dumps(
    {"error": {"code": "ledger_unavailable", "message": "the ledger node is down"}}
)
ONE_ACCEPTED = json.dumps(
    {
        "batch_id": "b",
        "accepted": 1,
        "duplicates": 0,
        "refused": 0,
        "items": [
            {
                "index": 0,
                "reference": "33082025-0000000401",
                "status": "accepted",
                "http_status": 201,
            }
        ],
    }
)


def test_service_trouble_is_one_sentence_and_exit_status_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "b.json"
    batch.write_text(json.dumps(items(401, 402)))

    def upload(url: str, *more: str) -> tuple[int, str, str]:
        return cli(capsys, "hospital", "upload", str(batch), "--url", url, "--api-key", "k", *more)

    port = closed_port()
    code, out, err = upload(f"http://127.0.0.1:{port}")
    assert (code, out) == (3, "")
    assert err.startswith(f"zeroclaim: cannot reach the service at http://127.0.0.1:{port}: ")
    assert "Connection refused" in err and err.count("\n") == 1

    with answering((503, "application/json", UNAVAILABLE)) as url:
        assert upload(url) == (
            3,
            "",
            f"zeroclaim: the service at {url} failed; try again later "
            "(HTTP 503 ledger_unavailable: the ledger node is down)\n",
        )
    with silent() as url:
        assert upload(url, "--timeout", "0.3") == (
            3,
            "",
            f"zeroclaim: the service at {url} did not answer within 0.3 s; try again later "
            "(or with a longer --timeout)\n",
        )
    with answering((200, "text/html", "<html>a proxy's page</html>")) as url:
        assert upload(url) == (
            3,
            "",
            f"zeroclaim: the service at {url} answered with something other than expected "
            "(HTTP 200: not JSON)\n",
        )
    # The first chunk went in, the second failed: the sentence says what to do.
    answers = [
        (200, "application/json", ONE_ACCEPTED),
        (500, "text/plain", "Internal Server Error"),
    ]
    with answering(*answers) as url:
        assert upload(url, "--chunk", "1") == (
            3,
            "",
            f"zeroclaim: the service at {url} failed; try again later (HTTP 500: Internal "
            "Server Error); 1 of 2 invoices were uploaded before that: upload the same file "
            "again, those come back as already there\n",
        )


def test_register_when_the_service_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, err = cli(
        capsys,
        "hospital",
        "register",
        HOSPITAL,
        "--name",
        "x",
        "--level",
        "primary",
        "--signer",
        "0x" + "11" * 20,
        "--url",
        url,
        "--admin-token",
        "t",
    )
    assert (code, out) == (3, "")
    assert err.startswith(f"zeroclaim: cannot reach the service at {url}: ")


def test_settings_the_environment_gets_wrong_are_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEROCLAIM_PORT", "eighty")
    code, out, err = cli(capsys, "hospital", "keygen", "--keystore", str(tmp_path / "k.json"))
    assert (code, out) == (2, "")
    assert err.startswith("zeroclaim: the ZEROCLAIM_* settings are refused: port: ")
    assert err.count("\n") == 1


def test_no_traceback_from_a_real_process(tmp_path: Path) -> None:
    """The same failures as the installed command shows them: stderr is one line."""
    (tmp_path / "b.json").write_text(json.dumps(items(1)))
    (tmp_path / "bad.json").write_text("{\n")
    keystore(tmp_path / "key.json", Account.create())
    url = f"http://127.0.0.1:{closed_port()}"
    runs = [
        (("hospital", "upload", "b.json", "--url", url), {}, 2),
        (("hospital", "upload", "b.json", "--url", url), {"ZEROCLAIM_API_KEY": "k"}, 3),
        (("hospital", "upload", "bad.json"), {"ZEROCLAIM_API_KEY": "k"}, 2),
        (
            tuple(sign_args(Path("b.json"), Path("key.json"), Path("o.json"))),
            {"ZEROCLAIM_HOSPITAL_KEY_PASSWORD": "wrong"},
            2,
        ),
    ]
    for args, env, status in runs:
        done = zeroclaim(*args, cwd=tmp_path, **env)
        assert (done.returncode, done.stdout) == (status, ""), done.stderr
        assert done.stderr.startswith("zeroclaim: ") and done.stderr.count("\n") == 1, done.stderr


# -- the HIS export -------------------------------------------------------------------------------


def test_a_file_of_his_exports_is_signed_as_it_is_and_uploaded(
    service: Service,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/his-export.md: the HIS's exports signed with --hospital, the bad one listed by
    the interface's field name, the good one uploaded and accepted."""
    example = json.loads((ROOT / "docs" / "examples" / "his-outpatient.json").read_text())
    bad = json.loads(json.dumps(example))
    bad["response"]["billNo"] = "0000000002"
    bad["request"]["fundPay"] = "18.01"  # the split no longer adds up to totalAmt
    batch = tmp_path / "his.json"
    batch.write_text(json.dumps([example, bad], ensure_ascii=False))
    keys = keystore(tmp_path / "key.json", service.key)
    out = tmp_path / "signed.json"
    monkeypatch.setenv("ZEROCLAIM_HOSPITAL_KEY_PASSWORD", PASSWORD)
    args = sign_args(batch, keys, out, service.domain)
    code, stdout, err = cli(capsys, *args)  # the exports do not name their hospital
    assert (code, json.loads(stdout)["signed"], json.loads(stdout)["refused"]) == (1, 0, 2)
    assert "hospital: give --hospital H...: the HIS export does not name the issuing" in err
    code, stdout, err = cli(capsys, *args, "--hospital", HOSPITAL)
    assert code == 1 and json.loads(stdout)["signed"] == 1, (stdout, err)
    assert (
        "refused 33060125-0000000002 (invalid_invoice): "
        "his.request.fundPay+accountPay+otherfundPay+selfCashPay:" in err
    )
    signed = json.loads(out.read_text())["items"]
    assert signed[0]["his"] == example and signed[0]["hospital"] == HOSPITAL
    assert len(bytes.fromhex(signed[0]["salt"])) == 16
    upload = ["hospital", "upload", "--url", service.url, "--api-key", service.api_key]
    code, stdout, err = cli(capsys, *upload, str(out))
    assert (code, json.loads(stdout)["accepted"]) == (0, 1), (stdout, err)
