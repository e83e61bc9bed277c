"""Parsing of extract text: encodings, record boundaries, quoting, headers (pure functions)."""

from __future__ import annotations

import polars as pl
import pytest

from transforms.raw.dialect import (
    CP1252,
    UTF8,
    UTF8_BOM,
    EncodingError,
    EncodingState,
    RestartAsCp1252,
    cut_at_record_end,
    start_state,
)
from transforms.raw.parsing import map_header, parse_header, split_fields, split_records
from transforms.raw.pseudo import mask_texts, mask_value
from transforms.raw.schema import ACTIONS, IJ_PAIEMENTS


def test_bom_means_utf8():
    state, skip = start_state(b"\xef\xbb\xbfLIG_NUM;X\n")
    assert (state.encoding, skip) == (UTF8_BOM, 3)
    with pytest.raises(EncodingError, match="BOM"):
        state.decode(b"caf\xe9\n")


def test_utf8_then_cp1252_when_invalid():
    state, skip = start_state(b"abc")
    assert skip == 0
    assert state.decode("é\n".encode()) == "é\n"
    assert state.encoding == UTF8
    # Invalid UTF-8 after non-ASCII UTF-8: the whole file must be re-read as cp1252.
    with pytest.raises(RestartAsCp1252):
        state.decode(b"caf\xe9\n")


def test_ascii_then_cp1252_switches_without_restart():
    state, _ = start_state(b"abc")
    assert state.decode(b"abc\n") == "abc\n"
    assert state.decode(b"caf\xe9 \x80\n") == "café €\n"
    assert state.encoding == CP1252


def test_neither_encoding_is_refused():
    state, _ = start_state(b"x")
    with pytest.raises(EncodingError, match="0x81"):
        state.decode(b"ab\x81\xe9\n", offset=100)
    forced = EncodingState(encoding=CP1252, forced=True)
    assert forced.decode(b"\xe9") == "é"


def test_cut_at_record_end_ignores_newlines_in_quotes():
    assert cut_at_record_end(b"a;b\nc;d") == 4
    assert cut_at_record_end(b"no newline") == 0
    buf = b'a;b\n"x\ny";z\n"open\nstill'
    assert cut_at_record_end(buf) == len(b'a;b\n"x\ny";z\n')
    # A stray quote never swallows the buffer: the last newline is used.
    assert cut_at_record_end(b'"\n') == 2


def test_split_records_line_numbers_crlf_blank_and_multiline():
    text = 'a;b\r\n"x\ny";z\r\n\r\nc;d\nlast'
    rec = split_records(text, first_line=2)
    assert rec.rows() == [(2, "a;b"), (3, '"x\ny";z'), (6, "c;d"), (7, "last")]
    assert split_records("", 2).height == 0
    assert split_records("x\r\n", 5).rows() == [(5, "x")]


def test_split_fields_quotes_semicolons_and_empty():
    rec = pl.DataFrame(
        {
            "ligne": [2, 3, 4, 5, 6],
            "texte": ['a;"b;c";d', 'e;"f ""g""";', "h;i", 'j;"k;l', 'x;"";z'],
        }
    )
    out = split_fields(rec, ["A", "B", "C"])
    assert out.rows() == [
        (2, 'a;"b;c";d', 3, "a", "b;c", "d"),
        (3, 'e;"f ""g""";', 3, "e", 'f "g"', None),
        (4, "h;i", 2, "h", "i", None),
        (5, 'j;"k;l', -1, None, None, None),
        (6, 'x;"";z', 3, "x", None, "z"),
    ]


def test_header_any_case_and_order_extra_and_missing():
    names = parse_header('\ufeff"lig_num";Flx_Dis_Dtd ; org_aff_cod;BEN_NIR_PSA;COMMENTAIRE\r\n')
    assert names == ["LIG_NUM", "FLX_DIS_DTD", "ORG_AFF_COD", "BEN_NIR_PSA", "COMMENTAIRE"]
    hmap = map_header(names, IJ_PAIEMENTS)
    assert not hmap.ok
    assert "BEN_SEX_COD" in hmap.missing and "LIG_NUM" not in hmap.missing
    assert hmap.extras == ("COMMENTAIRE",)
    full = [c.name.lower() for c in reversed(ACTIONS.columns) if c.name != "BEN_NIR_PSA"]
    assert map_header([n.upper() for n in full], ACTIONS).ok
    no_nir = [c.name for c in ACTIONS.columns if not c.name.startswith("BEN_NIR")]
    assert map_header(no_nir, ACTIONS).missing == ("BEN_NIR ou BEN_NIR_PSA",)
    assert map_header([*(n.upper() for n in full), "ELSM"], ACTIONS).duplicates == ("ELSM",)


def test_masking():
    assert mask_value("185077512345621") == "18507**********"
    texts = pl.Series(["L1;185077512345621;x", "shifted;;185077512345621", "bad;18507X1;y", None])
    nirs = pl.Series(["185077512345621", None, "18507X1", None])
    assert mask_texts(texts, nirs).to_list() == [
        "L1;18507**********;x",
        "shifted;;18507**********",
        "bad;18507**;y",
        None,
    ]


def _mask_texts_reference(texts: list, nirs: list) -> list:
    """Row by row, with Python's regex: what mask_texts computes on whole columns."""
    import re

    from transforms.raw.pseudo import NIR_LIKE_RE

    out = []
    for text, nir in zip(texts, nirs, strict=True):
        if text is not None:
            if nir and len(nir) > 5:
                text = text.replace(nir, mask_value(nir))
            text = re.sub(NIR_LIKE_RE, lambda m: mask_value(m.group(0)), text)
        out.append(text)
    return out


def test_masking_on_whole_columns_matches_the_row_by_row_reference():
    import random

    rng = random.Random(5)
    tokens = [
        "185077512345621", "1850775123456", "292062A12345678", "292062B123456", "2920619123456",
        "18507751234562", "1850775123456219", "385077512345621", "1850", "x", "é", "_", ";",
        " ", "-", "A", "9", "2A", "\t", "«", "»", "",
    ]  # fmt: skip
    texts, nirs = [], []
    for _ in range(3000):
        parts = [rng.choice(tokens) for _ in range(rng.randint(0, 7))]
        texts.append("".join(parts) if rng.random() > 0.05 else None)
        nirs.append(rng.choice([None, "", "1850", "185077512345621", "18507X1", *parts[:1]]))
    got = mask_texts(pl.Series("texte", texts), pl.Series(nirs, dtype=pl.String))
    assert got.name == "texte"
    assert got.to_list() == _mask_texts_reference(texts, nirs)


# --- native reader of blocks without quotes ---------------------------------------------------


def test_read_plain_block_matches_the_exact_path_on_ragged_lines_and_line_ends():
    from transforms.raw.parsing import read_plain_block

    data = b"1;2;3;4;5\r\n\r\n4;5\n6;7;8;9\n;;\n\n x\n7;8;\n1;2;3\n"
    names = ["A", "B", "C"]
    fields, index = read_plain_block(data, names, 2)
    assert fields.rows() == [
        (2, 5, "1", "2", "3"),
        (4, 2, "4", "5", None),
        (5, 4, "6", "7", "8"),
        (6, 3, None, None, None),
        (8, 1, " x", None, None),
        (9, 3, "7", "8", None),
        (10, 3, "1", "2", "3"),
    ]
    assert fields.columns == ["ligne", "nb_champs", "A", "B", "C"]
    exact = split_fields(split_records(data.decode(), 2), names)
    assert exact.drop("texte").equals(fields)
    assert index.texts(pl.Series([2, 9, 5])).to_list() == ["1;2;3;4;5", "7;8;", "6;7;8;9"]


def test_read_plain_block_declines_quotes_and_needs_no_trailing_newline():
    from transforms.raw.parsing import read_plain_block

    assert read_plain_block(b'1;"a;b";3\n', ["A", "B", "C"], 2) is None
    assert read_plain_block(b"", ["A"], 2) is None
    fields, index = read_plain_block(b"1;2\n3;4", ["A", "B"], 5)
    assert fields.rows() == [(5, 2, "1", "2"), (6, 2, "3", "4")]
    assert index.texts(pl.Series([6])).to_list() == ["3;4"]
    # The first line does not fix the number of columns (short or long, or empty lines first).
    fields, _ = read_plain_block(b"1\n1;2;3\n4;5;6;7;8\n\n", ["A", "B", "C"], 2)
    assert fields.rows() == [
        (2, 1, "1", None, None),
        (3, 3, "1", "2", "3"),
        (4, 5, "4", "5", "6"),
    ]
    fields, _ = read_plain_block(b"\n\n1;2;3\n", ["A", "B", "C"], 2)
    assert fields.rows() == [(4, 3, "1", "2", "3")]
