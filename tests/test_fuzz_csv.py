"""Random CSV text at the reader: it parses, or it raises DataError, never another exception."""
import warnings

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradfit.data.batches import DataError
from gradfit.data.files import DataWarning, open_table

NUMBERS = ["1", "-2.5", "3e5", "0", "7", ".5", "-0", "1e308", "1e999", "nan", "NaN", "inf", "-inf", ""]
ODD = [" ", "abc", '"3"', '"x,y"', '"', '""', " 4 ", "0x10", "1_0", "é", "NA", "null", "true", "1,5", "\t", ";"]
cell = st.integers(0, 19).flatmap(lambda k: st.sampled_from(NUMBERS) if k < 17 else
                                  st.sampled_from(ODD) if k < 19 else st.text(max_size=6))


@st.composite
def csv_text(draw):
    """(bytes, delimiter written with): mostly well-formed tables of numbers, with odd cells,
    ragged rows, headers and random bytes mixed in."""
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200)), delim
    ncols = draw(st.integers(1, 4))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    ragged = draw(st.integers(0, 4)) == 0
    rows = draw(st.lists(st.lists(cell, min_size=ncols - ragged, max_size=ncols + ragged), min_size=0, max_size=12))
    lines = [delim.join(r) for r in rows]
    if draw(st.booleans()):
        lines.insert(0, delim.join(["y", "a", "b", "c"][:ncols]))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return text.encode("utf-8", "replace"), delim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=csv_text(), other_delim=st.sampled_from([None, None, None, ",", ";"]), header=st.booleans(),
       drop_na=st.booleans(), cache=st.sampled_from([None, False]), explicit=st.booleans())
def test_random_csv_parses_or_raises_data_error(tmp_path, case, other_delim, header, drop_na, cache, explicit):
    content, delim = case
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    target = "y" if header else "c0"
    features = (["a", "b", "c"] if header else ["c1", "c2", "c3"]) if explicit else None
    try:
        warnings.simplefilter("ignore", DataWarning)
        data = open_table(path, target=target, features=features, delimiter=other_delim or delim, header=header,
                          drop_na=drop_na, cache=cache, min_rows=0)
        rows = sum(len(b) for b in data)
        assert rows == data.n_rows
        for b in data:
            assert b.X.shape == (len(b), data.n_features) and bool(torch.isfinite(b.X).all())
        list(data.shuffled(2, torch.Generator().manual_seed(0)))
    except DataError as exc:
        assert "\n" not in str(exc).strip()
