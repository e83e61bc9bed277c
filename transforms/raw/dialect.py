"""Dialect of an extract's bytes: encoding detection and cutting at record boundaries.

The contract allows UTF-8 (with or without BOM) and Windows-1252. The rule is fixed and
never guesses silently: a BOM means UTF-8; else bytes that decode as strict UTF-8 are UTF-8;
else Windows-1252 when every byte is defined there; else the file is refused (``encodage``).
Detection works block by block on a stream (see :class:`EncodingState`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOM = b"\xef\xbb\xbf"
UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
CP1252 = "cp1252"
ENCODING_LABELS = {UTF8: "UTF-8", UTF8_BOM: "UTF-8 (BOM)", CP1252: "Windows-1252"}


class EncodingError(ValueError):
    """The bytes are neither UTF-8 nor Windows-1252; the message says where."""


class RestartAsCp1252(Exception):
    """Invalid UTF-8 after non-ASCII UTF-8 text: the whole file must be re-read as cp1252."""


@dataclass
class EncodingState:
    """The encoding decision for one file, refined as blocks arrive.

    ``encoding`` starts as UTF-8 (or UTF-8 BOM) and may switch to Windows-1252 while every
    byte seen so far is ASCII (then earlier blocks read the same in both encodings). A switch
    needed after non-ASCII UTF-8 raises :class:`RestartAsCp1252`.
    """

    encoding: str = UTF8
    forced: bool = False
    seen_non_ascii: bool = False

    def decode(self, block: bytes, offset: int = 0) -> str:
        """Decode one block (cut at a line boundary) with the current decision."""
        if self.encoding == CP1252:
            return _decode_cp1252(block, offset)
        try:
            text = block.decode(UTF8)
        except UnicodeDecodeError as exc:
            if self.encoding == UTF8_BOM or self.forced:
                raise EncodingError(
                    f"octet invalide en UTF-8 à la position {offset + exc.start} "
                    "(le fichier commence par un BOM UTF-8)"
                ) from exc
            if self.seen_non_ascii:
                raise RestartAsCp1252 from exc
            self.encoding = CP1252
            return _decode_cp1252(block, offset)
        if not self.seen_non_ascii and not block.isascii():
            self.seen_non_ascii = True
        return text


def _decode_cp1252(block: bytes, offset: int) -> str:
    if block.isascii():  # same text in both encodings; the ASCII codec is much faster
        return block.decode("ascii")
    try:
        return block.decode(CP1252)
    except UnicodeDecodeError as exc:
        raise EncodingError(
            f"ni UTF-8 ni Windows-1252 : octet 0x{block[exc.start]:02X} indéfini "
            f"à la position {offset + exc.start}"
        ) from exc


def start_state(head: bytes) -> tuple[EncodingState, int]:
    """Initial state from the first bytes of a file and the number of BOM bytes to skip."""
    if head.startswith(BOM):
        return EncodingState(encoding=UTF8_BOM), len(BOM)
    return EncodingState(), 0


def cut_at_record_end(buffer: bytes) -> int:
    """Length of the longest prefix of ``buffer`` that ends a record (0 if none).

    A record ends at a ``\\n`` outside double quotes (quotes counted from the start of the
    buffer, which is a record start). When no newline is outside quotes — an unbalanced stray
    quote — the last newline is used, so a bad quote never swallows the rest of a file.
    """
    last = buffer.rfind(b"\n")
    if last < 0:
        return 0
    if b'"' not in buffer:
        return last + 1
    arr = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 0x0A)
    quotes_before = np.searchsorted(np.flatnonzero(arr == 0x22), newlines)
    even = newlines[(quotes_before % 2) == 0]
    if len(even):
        return int(even[-1]) + 1
    return last + 1
