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


# --- typing while reading (transforms.raw.native) ------------------------------------------


def _bar_separated(texts: str) -> list[str]:
    return texts.split("|")


# Edge texts per kind (some start or end with a space).
_EDGE_TEXTS = {
    "int": _bar_separated(
        "0|7|-0|+5|-12|0005|2147483647|2147483648|-2147483648|-2147483649|9999999999|"
        "99999999999|1234567890123|+|-|--1|+-1|1-| 1|1 |1,0|1.0|1e3|x|１２|é|0x1F|"
        "12345678901234567890|1985|1900|2100|1899|2101|+1950|-1950|01985"
    ),
    "dec": _bar_separated(
        "0|1|-1|+1|1,5|1.5|1,25|-0,05|+0.1|1,|.5|,5|1,234|1.2.3|1,2,3|9999999999,99|"
        "-9999999999.99|99999999999|12345678901,5|1 ,5|1,5 |-|+,5|1e2|abc|٣|41,4x|"
        "1234567890123456,78"
    ),
    "date": _bar_separated(
        "15/03/2024|2024-03-15|29/02/2024|29/02/2023|2000-02-29|1900-02-29|"
        "0000-02-29|0000-01-01|9999-12-31|31/04/2024|00/01/2024|01/00/2024|"
        "01/13/2024|32/01/2024|1/02/2024| 1/02/2024|2024-1-01|2024/03/15|15-03-2024|"
        "15/03/24|15/03/2024 |2024-03-15T00|aa/bb/cccc|15.03.2024|2024-03-1x|"
        "15/03/2O24|1600-02-29|1700-02-29|15/03/202x|202x-03-15|15/0x/2024|x5/03/2024|"
        "2024-0x-15|2024-03-x5|2024-03-1x|0x/03/2024"
    ),
}


def _edge_frame(texts: list[str | None], n: int) -> tuple[bytes, list[str]]:
    """A block whose column ``V`` holds ``texts`` (None: empty), between text columns."""
    names = ["A", "V", "B"]
    lines = [f"a{i};{t or ''};{'b' * (i % 20)}" for i, t in enumerate(texts)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8"), names


@pytest.mark.parametrize(
    ("column", "kind"),
    [("PRS_ACT_NBR", "int"), ("BEN_RNG_GEM", "int"), ("BEN_NAI_ANN", "int"),
     ("BSE_REM_MNT", "dec"), ("FLX_DIS_DTD", "date")],
)  # fmt: skip
def test_typing_while_reading_equals_the_rules_expressions(column, kind):
    from transforms.raw.parsing import read_plain_block
    from transforms.raw.rules import _parse_expr, v

    spec = next(c for c in IJ_PAIEMENTS.columns if c.name == column)
    texts = [*_EDGE_TEXTS[kind], None, ""]
    data, names = _edge_frame(texts, len(texts))
    fields, _ = read_plain_block(data, names, 2, {"V": spec})
    expected = fields.select(_parse_expr(spec, pl.col("V")).alias(v("V"))).to_series()
    assert fields.get_column(v("V")).dtype == expected.dtype
    # Physical values: days since 1970 for dates (year 0 has no Python date).
    got = fields.get_column(v("V")).to_physical().to_list()
    want = expected.to_physical().to_list()
    assert got == want, [(t, g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]
    assert got.count(None) < len(got)  # both valid and invalid values are met


def test_read_plain_block_keeps_long_values_and_utf8_apart_per_column():
    from transforms.raw.parsing import read_plain_block

    long = "x" * 13
    data = f"{long};é;{'y' * 40}\n1;{'ü' * 7};\n;;{long}z\n".encode()
    fields, index = read_plain_block(data, ["A", "B", "C"], 2)
    assert fields.rows() == [
        (2, 3, long, "é", "y" * 40),
        (3, 3, "1", "ü" * 7, None),
        (4, 3, None, None, long + "z"),
    ]
    exact = split_fields(split_records(data.decode(), 2), ["A", "B", "C"])
    assert exact.drop("texte").equals(fields)
    assert index.texts(pl.Series([4])).to_list() == [f";;{long}z"]


def test_read_plain_block_counts_every_field_even_past_an_empty_extra_one():
    from transforms.raw.parsing import read_plain_block

    # A line with n + 2 fields whose field n + 1 is empty has too many fields all the same.
    fields, _ = read_plain_block(b"1;2;3;;5\n1;2;3\n", ["A", "B", "C"], 2)
    assert fields.get_column("nb_champs").to_list() == [5, 3]


def test_checks_on_a_block_read_typed_equal_the_exact_path(monkeypatch):
    """The whole rule set gives the same result whether values are typed while reading or
    by the rules from the exact path's strings."""
    from flows.ingest import load_references
    from tests.test_ingest_fixtures import IJ_HEADER, checked_variants, csv_text, ij_line
    from transforms.raw import rules
    from transforms.raw.native import typed_columns
    from transforms.raw.parsing import read_plain_block

    variants = [
        *checked_variants(),
        ij_line(LIG_NUM="L6", BEN_RNG_GEM="+1", BSE_REM_MNT="+1244.10"),
        ij_line(LIG_NUM="L7", BEN_NAI_ANN=None),
    ]
    text = csv_text(variants * 5, IJ_HEADER).split("\n", 1)[1]
    refs = load_references()
    exact = split_fields(split_records(text, 2), IJ_HEADER).drop("texte")
    typed, _ = read_plain_block(text.encode(), IJ_HEADER, 2, typed_columns(IJ_PAIEMENTS))
    assert typed.select(exact.columns).equals(exact)
    want = rules.check_records(exact, IJ_PAIEMENTS, refs, len(IJ_HEADER))
    got = rules.check_records(typed, IJ_PAIEMENTS, refs, len(IJ_HEADER))
    assert got.select(want.columns).equals(want)
    assert want.get_column("rejete").to_list() == [False, True, False, True, True, False, True] * 5


def test_nir_parts_read_while_reading_equal_the_rules_computation():
    from tests.test_ingest_fixtures import nir
    from transforms.raw.parsing import read_plain_block
    from transforms.raw.rules import NIR_PARTS, nir_columns, v

    spec = next(c for c in IJ_PAIEMENTS.columns if c.name == "BEN_NIR")
    bodies = ["1850775123456", "292062A123456", "292062B123456", "2990199123456"]
    texts = [nir(b) for b in bodies] + [
        *(nir(b)[:-2] + "00" for b in bodies),  # wrong key: still the NIR form
        *_bar_separated(
            "185007512345621|185137512345621|185197512345621|185207512345621|"
            "185997512345621|385077512345621|085077512345621|18507751234562|"
            "1850775123456211|1850775123456|18507A5123456 21|185072C12345621|"
            "18507A212345621|1850775123A5621|185077512345A21|1850775123456 1|"
            " 85077512345621|185077512345621 |1a5077512345621|18507751234562١|"
            "292062a12345621|2920622A1234562|-85077512345621|+85077512345621"
        ),
        None,
        "",
    ]
    data, names = _edge_frame(texts, len(texts))
    fields, _ = read_plain_block(data, names, 2, {"V": spec})
    want = nir_columns(fields.select(pl.col("V").alias(v("BEN_NIR")))).select(NIR_PARTS)
    got = fields.select(NIR_PARTS)
    assert got.equals(want), [
        (t, g, w) for t, g, w in zip(texts, got.rows(), want.rows(), strict=True) if g != w
    ]
    ok = got.get_column("_nir_ok").to_list()
    # months 20 and 99 have the NIR form (persons born abroad, unknown month)
    assert ok == [True] * 8 + [False, False, False, True, True] + [False] * 21


def test_read_plain_block_with_line_ends_counted_by_the_caller_gives_the_same_block():
    from transforms.raw.parsing import read_plain_block

    for data in (b"1;2;3\r\n\r\n4;5\n x\n", b"1;2\n3;4", b"\n\n1;2;3\n"):
        fields, index = read_plain_block(data, ["A", "B", "C"], 2)
        given, given_index = read_plain_block(data, ["A", "B", "C"], 2, newlines=data.count(b"\n"))
        assert given.equals(fields)
        assert given_index.newlines == index.newlines == data.count(b"\n")
        assert given_index.starts.tolist() == index.starts.tolist()
