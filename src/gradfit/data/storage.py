"""Where table files live: a local disk or object storage (``s3://``, ``gs://``, ``hdfs://``, ``file://``).

Every path the data layer takes goes through here, so a bucket works wherever a local path does
(folders, globs, sharding by row group, CSV byte ranges). URIs are served by pyarrow's filesystems;
S3 options ride in the query string as pyarrow reads them (``s3://bucket/key?endpoint_override=
host:port&scheme=http``) or come from the usual variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``).

Credentials are looked for where the AWS and Google SDKs look first (variables, credential files);
when there are none the read stops with one line instead of letting the SDK ask a cloud metadata
server. ``?anonymous=true`` reads a public bucket; ``AWS_EC2_METADATA_DISABLED=false`` opts in to
an instance role. Every failure is a one-line :class:`DataError` naming the URI.
"""
from __future__ import annotations

import fnmatch
import io
import os
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from gradfit.exceptions import DataError

SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "file")
GLOB_CHARS = "*?["


def is_uri(path: str) -> bool:
    scheme, sep, _ = str(path).partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _failed(uri: str, exc: BaseException) -> DataError:
    text = str(exc)
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "Forbidden" in text:
        return DataError(f"{uri}: access denied; check that these credentials may read it "
                         "(anonymous access reads public buckets only)")
    return DataError(f"{uri}: {_one_line(exc)}; check the address and the credentials")


def _aws_credentials() -> bool:
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if any(env.get(k) for k in ("AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                "AWS_CONTAINER_CREDENTIALS_FULL_URI")):
        return True
    files = [env.get("AWS_SHARED_CREDENTIALS_FILE", os.path.expanduser("~/.aws/credentials")),
             env.get("AWS_CONFIG_FILE", os.path.expanduser("~/.aws/config"))]
    return any(os.path.isfile(f) for f in files) or env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "false"


def _gcs_credentials() -> bool:
    adc = os.path.expanduser("~/.config/gcloud/application_default_credentials.json")
    return bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")) or os.path.isfile(adc)


def _check_credentials(scheme: str, netloc: str, query: str) -> None:
    """Stop with one line when no credentials are at hand (rather than let the SDK try a metadata server)."""
    options = {k.lower(): v for k, v in parse_qs(query).items()}
    anonymous = options.get("anonymous", ["false"])[0].lower() in ("1", "true", "yes")
    where = f"{scheme}://{netloc}"
    if scheme == "s3" and not anonymous and "access_key" not in options and not _aws_credentials():
        raise DataError(f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                        "(or AWS_PROFILE), or add ?anonymous=true to read a public bucket")
    if scheme in ("gs", "gcs") and not anonymous and not _gcs_credentials():
        raise DataError(f"{where}: no Google Cloud credentials found; set GOOGLE_APPLICATION_CREDENTIALS, "
                        "or add ?anonymous=true to read a public bucket")


@lru_cache(maxsize=32)
def _filesystem(scheme: str, netloc: str, query: str) -> pafs.FileSystem:
    uri = f"{scheme}://{netloc}/?{query}" if query else f"{scheme}://{netloc}/"
    where = f"{scheme}://{netloc}"
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    try:
        if options.pop("anonymous", "false").lower() in ("1", "true", "yes"):  # pyarrow's URIs have no such option
            if scheme == "s3":
                return pafs.S3FileSystem(anonymous=True, **options)
            if scheme in ("gs", "gcs"):
                return pafs.GcsFileSystem(anonymous=True, **options)
        return pafs.FileSystem.from_uri(uri)[0]
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{where}: cannot reach this storage ({_one_line(exc)}); check the address, "
                        "and for hdfs:// that Hadoop's libhdfs is installed") from None


def locate(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, its path) of a URI; a local path gives (None, path)."""
    if not is_uri(uri):
        return None, os.fspath(uri)
    parts = urlsplit(str(uri))
    scheme = parts.scheme.lower()
    _check_credentials(scheme, parts.netloc, parts.query)
    fs = _filesystem(scheme, parts.netloc, parts.query)
    if scheme in ("s3", "gs", "gcs"):
        path = parts.netloc + parts.path
    else:
        path = parts.path
    return fs, path


def _uri_of(template: str, path: str) -> str:
    """The URI of ``path`` on the filesystem of ``template`` (same scheme, host and options)."""
    parts = urlsplit(template)
    scheme = parts.scheme.lower()
    head = f"{parts.scheme}://" if scheme in ("s3", "gs", "gcs") else f"{parts.scheme}://{parts.netloc}"
    return head + path + (f"?{parts.query}" if parts.query else "")


def _info(uri: str):
    fs, path = locate(uri)
    try:
        return fs, path, fs.get_file_info(path)
    except (pa.ArrowException, OSError) as exc:
        raise _failed(uri, exc) from None


def _not_found(uri: str, fs, path: str) -> DataError:
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("s3", "gs", "gcs"):
        bucket = path.split("/", 1)[0]
        try:
            missing = fs.get_file_info(bucket).type == pafs.FileType.NotFound
        except (pa.ArrowException, OSError):
            missing = False
        if missing:
            return DataError(f"{uri}: bucket '{bucket}' does not exist (or these credentials cannot see it); "
                             "check the bucket name")
        return DataError(f"{uri}: no such object in bucket '{bucket}'; check the key")
    return DataError(f"{uri}: no such file; check the path")


def resolve_uri(uri: str, extensions: tuple[str, ...]) -> list[str]:
    """The files a URI names (a file, a folder's table files, or a glob), sorted, as URIs."""
    fs, path, info = _info(uri)
    if info.type == pafs.FileType.File:
        return [uri]
    if info.type == pafs.FileType.Directory:
        sel = pafs.FileSelector(path, recursive=False)
        files = sorted(_uri_of(uri, f.path) for f in fs.get_file_info(sel)
                       if f.type == pafs.FileType.File and f.base_name.lower().endswith(extensions)
                       and not f.base_name.startswith("."))
        if not files:
            raise DataError(f"folder {uri} has no CSV or Parquet files (.csv, .parquet); check the path")
        return files
    if any(ch in path for ch in GLOB_CHARS):
        cut = min(path.index(ch) for ch in GLOB_CHARS if ch in path)
        base = path[:cut].rsplit("/", 1)[0]
        try:
            found = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except (pa.ArrowException, OSError) as exc:
            raise _failed(uri, exc) from None
        files = sorted(_uri_of(uri, f.path) for f in found
                       if f.type == pafs.FileType.File and fnmatch.fnmatchcase(f.path, path))
        if not files:
            raise DataError(f"no files match {uri}; check the pattern")
        return files
    raise _not_found(uri, fs, path)


def size(path: str) -> int:
    if not is_uri(path):
        return os.path.getsize(path)
    return _info(path)[2].size


def open_file(path: str):
    """A random-access file for pyarrow (a local path is given back as it is: pyarrow opens it)."""
    if not is_uri(path):
        return path
    fs, p = locate(path)
    try:
        return fs.open_input_file(p)
    except FileNotFoundError:
        raise _not_found(path, fs, p) from None
    except (pa.ArrowException, OSError) as exc:
        raise _failed(path, exc) from None


def open_binary(path: str):
    """A binary file object with ``read``, ``seek`` and line iteration."""
    if not is_uri(path):
        return open(path, "rb")
    return io.BufferedReader(open_file(path))


def open_text(path: str):
    if not is_uri(path):
        return open(path, "r", encoding="utf-8", errors="replace", newline="")
    return io.TextIOWrapper(open_binary(path), encoding="utf-8", errors="replace", newline="")


def byte_range(path: str, start: int, length: int):
    """A stream of ``length`` bytes from ``start`` (a shard of one CSV file)."""
    f = pa.OSFile(path) if not is_uri(path) else open_file(path)
    return f.get_stream(start, length)


def open_stream(path: str):
    """What ``pyarrow.csv.open_csv`` reads: a local path, or a stream of the object (decompressed by
    its extension, as pyarrow does for a local path)."""
    if not is_uri(path):
        return path
    fs, p = locate(path)
    try:
        return fs.open_input_stream(p, compression="detect")
    except FileNotFoundError:
        raise _not_found(path, fs, p) from None
    except (pa.ArrowException, OSError) as exc:
        raise _failed(path, exc) from None
