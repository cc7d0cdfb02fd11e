"""Object storage: s3:// against a local S3 server (moto, on 127.0.0.1; no real endpoint), file:// URIs."""
from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest

import gradfit
from gradfit.cli import main
from gradfit.data.batches import DataError
from gradfit.data.files import open_table

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

BUCKET = "gradfit-test"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def frame(n=2400, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 3)) * [1, 2, 0.5] + [1, -1, 3]
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = X @ [1.5, -0.2, 3.0] + 7 + r.standard_t(3, size=n)
    return df


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in [*CREDS, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(CREDS)
    for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(k, None)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket=BUCKET)
    local = tmp_path_factory.mktemp("s3src")
    df = frame()
    for i in range(3):  # a folder of three Parquet files, 4 row groups each
        part = df.iloc[i * 800:(i + 1) * 800]
        part.to_parquet(local / f"p{i}.parquet", row_group_size=200, index=False)
        client.upload_file(str(local / f"p{i}.parquet"), BUCKET, f"dir/p{i}.parquet")
    df.to_csv(local / "all.csv", index=False)
    client.upload_file(str(local / "all.csv"), BUCKET, "csv/all.csv")
    (local / "all.csv.gz").write_bytes(gzip.compress((local / "all.csv").read_bytes()))
    client.upload_file(str(local / "all.csv.gz"), BUCKET, "csv/all.csv.gz")
    client.put_object(Bucket=BUCKET, Key="empty/readme.md", Body=b"no tables here")
    query = f"?endpoint_override={host}:{port}&scheme=http"
    try:
        yield {"query": query, "df": df, "local": local, "endpoint": f"http://{host}:{port}"}
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def uri(s3, key):
    return f"s3://{BUCKET}/{key}{s3['query']}"


@pytest.mark.parametrize("key", ["dir/p1.parquet", "dir", "dir/", "dir/*.parquet", "csv/all.csv", "csv/all.csv.gz"])
def test_reads_files_folders_globs(s3, key):
    data = open_table(uri(s3, key), target="y", cache=False)
    rows = np.concatenate([b.y.numpy() for b in data])
    want = s3["df"]["y"].to_numpy()
    if key == "dir/p1.parquet":
        want = want[800:1600]
    np.testing.assert_array_equal(rows, want)
    assert data.feature_names == ["a", "b", "c"]


def test_endpoint_from_the_environment(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    data = open_table(f"s3://{BUCKET}/dir/p0.parquet", target="y")
    assert data.n_rows == 800


def test_each_shard_reads_only_its_row_groups(s3):
    parts = [open_table(uri(s3, "dir/*.parquet"), target="y", shard=(r, 2), cache=False) for r in range(2)]
    assert [len(p.units) for p in parts] == [6, 6]  # 12 row groups dealt round-robin
    assert {(u.path, u.row_group) for u in parts[0].units}.isdisjoint({(u.path, u.row_group) for u in parts[1].units})
    assert sum(p.n_rows for p in parts) == 2400
    csv = [open_table(uri(s3, "csv/all.csv"), target="y", shard=(r, 2), cache=False) for r in range(2)]
    got = np.concatenate([b.y.numpy() for p in csv for b in p])
    np.testing.assert_allclose(got, s3["df"]["y"].to_numpy(), rtol=1e-15)  # byte ranges of one object


def test_streamed_l1_fit_from_s3_equals_local(s3):
    df = s3["df"]
    remote = gradfit.fit(open_table(uri(s3, "dir/"), target="y", cache=False), loss="l1",
                         options={"min_rows": 500})
    ref = gradfit.fit(df[["a", "b", "c"]].to_numpy(), df["y"].to_numpy(), loss="l1")
    assert remote.converged_
    assert abs(remote.final_loss_ - ref.final_loss_) <= 1e-10 * ref.final_loss_


def test_file_uri(s3):
    path = s3["local"] / "p2.parquet"
    data = open_table(f"file://{path}", target="y")
    assert data.n_rows == 800


@pytest.mark.parametrize("key, words", [
    ("dir/nothere.parquet", "no such object in bucket 'gradfit-test'; check the key"),
    ("nothere/*.parquet", "no files match"),
    ("empty", "has no CSV or Parquet files"),
])
def test_missing_objects_are_one_line_errors(s3, key, words):
    with pytest.raises(DataError) as err:
        open_table(uri(s3, key), target="y")
    msg = str(err.value)
    assert words in msg and "\n" not in msg and f"s3://{BUCKET}" in msg


def test_missing_bucket(s3):
    with pytest.raises(DataError, match="bucket 'no-such-bucket' does not exist"):
        open_table(f"s3://no-such-bucket/x.parquet{s3['query']}", target="y")


def test_no_credentials(s3, monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
              "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws either
    with pytest.raises(DataError, match="no AWS credentials found.*anonymous=true") as err:
        open_table(uri(s3, "dir/p0.parquet"), target="y")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="access denied"):  # anonymous reads only public buckets
        open_table(uri(s3, "dir/p0.parquet") + "&anonymous=true", target="y")


def test_cli_errors_exit_2(s3, capsys):
    assert main(["fit", uri(s3, "dir/nothere.parquet"), "--target", "y"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such object" in err[0]


def test_cli_two_processes_from_s3(s3, capsys, tmp_path):
    args = ["fit", uri(s3, "dir/*.parquet"), "--target", "y", "--loss", "quantile", "--quantile", "0.9", "--json"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    code = main([*args, "--nproc", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    two = json.loads(out.out)
    assert two["training"]["final_loss"] == pytest.approx(one["training"]["final_loss"], rel=1e-10)
