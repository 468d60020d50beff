"""Detecting a CSV's delimiter, decimal mark and encoding from its first KB (`nnctl.dialect`), and the errors that
name the setting when the sample leaves the answer open."""

import codecs

import pytest

from nnctl.cli.app import FLAGS
from nnctl.dialect import (
    SAMPLE_BYTES,
    Dialect,
    Settings,
    decode_failure,
    delimiter_value,
    detect,
    encoding_value,
    extra_fields_hint,
    misread_numbers,
    sniff,
)
from nnctl.errors import DataError

CONFIG = Settings(prefix="data.")  # errors name the config's keys


def found(text: str, settings: Settings = CONFIG, **options) -> Dialect:
    return detect(text, "t.csv", settings, complete=True, **options)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_each_candidate_is_detected(delimiter, newline):
    rows = [["name", "x", "y"], ["a", "1.5", "2"], ["b b", "3.25", ""], ["c", "-1", "7"]]
    text = newline.join(delimiter.join(row) for row in rows) + newline
    assert found(text) == Dialect(delimiter, ".", "utf-8-sig", CONFIG)


def test_a_byte_order_mark_and_crlf_in_a_file(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + "name;x\r\nà;1,5\r\nb;2,25\r\n".encode())
    dialect = sniff(path, CONFIG)
    assert (dialect.delimiter, dialect.decimal, dialect.encoding) == (";", ",", "utf-8-sig")
    assert dialect.head.startswith("name;x")  # the mark is not part of the first name


def test_decimal_commas():
    assert found("a;b\nx;5,1\ny;7\n").decimal == ","
    assert found('a,b\nx,"5,1"\ny,7\n').decimal == ","  # comma-separated: the numbers are quoted
    assert found("a\tb\nx\t5,1\n").decimal == ","
    assert found("a;b\nx;5.1\n").decimal == "."
    # no decimals in the sample: Excel writes ';' where the comma is the decimal mark
    assert found("a;b\nx;5\n").decimal == ","
    assert found("a,b\nx,5\n").decimal == "."
    assert found("a;b\nNA;?\n,;\n").decimal == ","  # gaps and markers say nothing


def test_what_is_asked_for_is_not_detected():
    dialect = found("a;b\n1,5;2\n", Settings(delimiter=";", decimal=".", prefix="data."))
    assert (dialect.delimiter, dialect.decimal) == (";", ".")
    assert found("a|b\n1|2\n", Settings(delimiter=",")).delimiter == ","


def test_the_names_the_caller_needs_decide():
    text = "a,b;c,d\n1,2;3,4\n"  # splits evenly on ',' (3 names) and on ';' (2 names)
    with pytest.raises(DataError, match=r"t.csv: cannot tell which character separates the fields: the header "
                                        r"splits into 3 names on ',' and 2 names on ';', and the rows fit both; "
                                        r"set data.delimiter$"):
        found(text)
    assert found(text, columns=["b;c"]).delimiter == ","
    assert found(text, columns=["c,d"]).delimiter == ";"


def test_unsure_delimiter_names_the_flag_for_a_caller_without_a_config():
    with pytest.raises(DataError) as caught:
        found("a,b;c\n1,2,3;4;5\n", Settings())
    assert caught.value.render(FLAGS).endswith("no choice gives every row as many fields as the header; set "
                                               "--delimiter")


def test_ragged_rows_keep_the_only_delimiter_that_splits_the_header():
    assert found("a,b\n1,2,3\n4,5\n").delimiter == ","  # the reader names the long line
    assert found("a;b;c\n1;2\n3;4;5\n").delimiter == ";"  # short rows are gaps
    assert found("y\n1\n2\n").delimiter == ","  # one column: any delimiter reads it alike


def test_unsure_decimal_mark_names_the_setting():
    with pytest.raises(DataError, match=r"column 'a' has '1,5', column 'b' '2.5'; set data.decimal to ',' or '.'"):
        found("a;b\n1,5;2.5\n")
    with pytest.raises(DataError, match=r"column 'n' has numbers like '1,234': a decimal comma, or a thousands "
                                        r"separator\? set data.decimal to ','"):
        found('n,m\n"1,234",1\n"12,500",2\n')
    assert found("n;m\n1,234;1\n").decimal == ","  # after ';' a comma is the decimal mark
    assert found('n,m\n"1,234",1\n"2,5",2\n').decimal == ","  # 2,5 is no thousands grouping


def test_a_sample_cut_mid_record_ignores_the_cut_record():
    text = 'a;b\nx;1,5\ny;"long' + "z" * 100  # the sample ends inside a quoted field
    assert detect(text, "t.csv", CONFIG, complete=False).delimiter == ";"


def test_sniff_reads_only_the_head(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a;b\n" + "x;1,5\n" * 20_000 + "y;2.5\n")  # the point is far beyond the sample
    dialect = sniff(path, CONFIG)
    assert (dialect.delimiter, dialect.decimal) == (";", ",")
    assert len(dialect.head) <= SAMPLE_BYTES


def test_not_utf8_names_the_byte_the_line_and_the_setting(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,x\n" + b"a,1\n" * 5 + "Citroën,2\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"^.*latin.csv: not UTF-8 \(byte 0xeb at line 7\); set data.encoding "
                                        r"\(e.g. cp1252 or latin-1\)$"):
        sniff(path, CONFIG)
    assert sniff(path, Settings(encoding="cp1252")).head.endswith("Citroën,2\n")


def test_decoding_errors_beyond_the_head(tmp_path):
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 10_000 + "Škoda,3\n".encode("cp1252"))
    assert sniff(path, CONFIG).encoding == "utf-8-sig"  # the head decodes
    with open(path, "rb") as stream:
        error = decode_failure(stream, CONFIG, str(path))
    assert error is not None and "not UTF-8 (byte 0x8a at line 10002); set data.encoding" in str(error)
    with open(path, "rb") as stream:
        assert decode_failure(stream, Settings(encoding="cp1252"), str(path)) is None


def test_other_encodings(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"UTF-16 text .*; set data.encoding to utf-16"):
        sniff(path, CONFIG)
    assert sniff(path, Settings(encoding="utf-16")).delimiter == ","
    path.write_bytes("a,b\n1,2\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"not valid utf-16 text \(UTF-16 stream does not start with BOM\)"):
        sniff(path, Settings(encoding="utf-16", prefix="data."))
    path.write_bytes(codecs.BOM_UTF8 + b"a;b\n1;2\n")  # utf-8 asked for: the mark is still dropped
    assert sniff(path, Settings(encoding="utf8")).head == "a;b\n1;2\n"


def test_values_of_the_settings():
    assert delimiter_value("tab") == delimiter_value("\\t") == delimiter_value("\t") == "\t"
    assert delimiter_value(";") == ";"
    for bad in ("ab", "", "x", "7", '"', ".", "\n"):
        with pytest.raises(ValueError, match="expected one character"):
            delimiter_value(bad)
    assert encoding_value("cp1252") == "cp1252"
    with pytest.raises(ValueError, match="unknown text encoding 'latin-2'; did you mean 'latin2'"):
        encoding_value("latin-2")
    with pytest.raises(ValueError, match="'rot13' is not a text encoding"):
        encoding_value("rot13")


def test_flags_are_checked_and_named():
    assert Settings.checked("tab", ",", "latin-1") == Settings("\t", ",", "latin-1")
    for arguments, flag in [(("x",), "--delimiter"), ((None, ";"), "--decimal"), ((None, None, "utf9"), "--encoding")]:
        with pytest.raises(DataError) as caught:
            Settings.checked(*arguments)
        assert caught.value.render(FLAGS).startswith(f"{flag}: ")


def test_numbers_the_sample_did_not_show():
    points = found("a;b\nx;5\n")  # no evidence: ',' after ';'
    assert misread_numbers(["1.5", "2", "NA"], points) == "1.5"
    assert misread_numbers(["1.5", "abc"], points) is None  # text, not numbers
    commas = found("a,b\nx,5\n")
    assert misread_numbers(["5,1"], commas) == "5,1"
    assert misread_numbers(["5,1"], found("a,b\nx,5\n", Settings(decimal="."))) is None  # asked for: trusted


def test_why_rows_are_longer_than_the_header():
    excel = "a;b;c\nx;307,0;1\ny;12,5;2\n"
    assert extra_fields_hint(found(excel, Settings(delimiter=",", prefix="data."))) == \
        "the file looks ';'-separated: set {delimiter} to ';'"
    unquoted = "a,b,c\nx,307,0,1\ny,12,5,2\n"
    assert "decimal comma (5,1), each splits into two fields" in extra_fields_hint(found(unquoted))
    assert extra_fields_hint(found("a,b,c\n1,2,3\n4,5,6,7\n")) == "quote values that contain ',', or name every column"
