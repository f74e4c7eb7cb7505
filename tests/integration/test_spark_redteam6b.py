"""Red team 6b (session 6): Parquet layouts on which the Spark engine read other columns than the Arrow path.
Each failed on main (docs/notes/2026-12-04-s6/redteam6b.md)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.data.pii import PiiPolicy
from mlgate.gates.data.pii_spark import check_pii_spark
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import open_source
from mlgate.gates.data.spark_source import spark_session

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "0" * 64
POLICY = PiiPolicy(types=("email", "us_ssn"))
ROWS = 120


def emails(tag: str) -> list[str]:
    return [f"someone{i}.{tag}@example.org" if i % 12 == 5 else f"note {i}" for i in range(ROWS)]


@pytest.fixture(scope="module")
def spark():
    with spark_session() as session:
        yield session


def layouts(root):
    """Two files that disagree: a column only the second holds; ``Notes`` beside ``notes``."""
    only_later, cases = root / "only_later", root / "cases"
    only_later.mkdir()
    cases.mkdir()
    pq.write_table(pa.table({"v": list(range(ROWS))}), only_later / "a.parquet")
    pq.write_table(pa.table({"v": list(range(ROWS)), "notes": emails("b")}), only_later / "b.parquet")
    pq.write_table(pa.table({"Notes": ["x"] * ROWS, "v": list(range(ROWS))}), cases / "a.parquet")
    pq.write_table(pa.table({"notes": emails("c"), "v": list(range(ROWS))}), cases / "b.parquet")
    return {"only_later": only_later, "cases": cases}


def test_spark_reads_files_that_disagree_as_the_arrow_path_does(spark, tmp_path):
    """main: the first failed the job (Spark took one file's schema), the second counted ``notes``' addresses
    under ``Notes`` as well (Spark resolved names case-insensitively)."""
    for name, path in layouts(tmp_path).items():
        source = open_source(path, 50)
        by_spark, streamed = check_pii_spark(source, POLICY, DIGEST, session=spark), check_pii_source(source, POLICY,
                                                                                                     DIGEST)
        assert by_spark.metrics["cells_by_type"] == streamed.metrics["cells_by_type"], name
        assert streamed.metrics["cells_by_type"]["email"] == {"notes": 10}, name
        assert [f.location for f in by_spark.findings] == [f.location for f in streamed.findings], name


def test_spark_refuses_a_partition_key_that_shadows_a_column(spark, tmp_path):
    """main: PASSED, the scan saw the key's values ``a`` and ``b`` where the files hold e-mail addresses."""
    for day in ("a", "b"):
        (tmp_path / f"day={day}").mkdir()
        pq.write_table(pa.table({"day": emails(day), "v": list(range(ROWS))}), tmp_path / f"day={day}" / "p.parquet")
    with pytest.raises(GateInputError, match="partition key 'day'"):
        check_pii_spark(open_source(tmp_path, 50), POLICY, DIGEST, session=spark)
