"""Photos are decoded at most one per core at a time: each decode holds up to the decoded-size
limit in memory, and the server's thread pool would otherwise run forty at once."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import segno

from api.flows.verify import photo_reader
from verifier.decode import PhotoDecoder


def test_no_more_photos_are_decoded_at_once_than_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    segno.make("ZC1:GATE-TEST", error="m").save(buffer, kind="png", scale=8, border=4)
    photo = buffer.getvalue()
    running, most = 0, 0
    count = threading.Lock()
    real = PhotoDecoder.decode_bytes

    def counted(self: PhotoDecoder, data: bytes) -> Any:  # the real decode, counted
        nonlocal running, most
        with count:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.005)  # long enough that the twelve threads overlap
            return real(self, data)
        finally:
            with count:
                running -= 1

    monkeypatch.setattr(PhotoDecoder, "decode_bytes", counted)
    read = photo_reader(at_once=2)
    with ThreadPoolExecutor(12) as threads:
        texts = list(threads.map(read, [photo] * 48))
    assert texts == [["ZC1:GATE-TEST"]] * 48
    assert most == 2  # twelve threads asked at once; two decoded, the others waited
