"""CSV uploads for the playground: two numeric columns (x, y), at most 10 MB and 100,000 rows, kept in
memory for the session (the last :data:`KEEP` files) and named in the PyTorch program."""
from __future__ import annotations

import io
import re
import threading
import uuid
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from gradfit.tutorial.code import RunSettings
from gradfit.tutorial.run import TutorialData

LIMITS = {"n": 100_000, "epochs": 10_000, "points": 1_000, "race": 2, "upload_bytes": 10 * 1024 * 1024}  # the playground's bounds

KEEP = 16


class UploadError(ValueError):
    """An upload the playground refuses; the message says why and what to do."""


class Uploads:
    def __init__(self):
        self.items: dict[str, tuple[str, bool, np.ndarray]] = {}
        self.lock = threading.Lock()

    def add(self, name: str, header: bool, xy: np.ndarray) -> str:
        key = uuid.uuid4().hex[:12]
        with self.lock:
            self.items[key] = (name, header, xy)
            while len(self.items) > KEEP:
                self.items.pop(next(iter(self.items)))
        return key

    def attach(self, s: RunSettings, key: str) -> RunSettings:
        with self.lock:
            if key not in self.items:
                raise UploadError("the uploaded file is no longer on the server; upload it again")
            name, header, xy = self.items[key]
        if any(not 0 <= i < len(xy) for i in s.moved):
            raise UploadError("a moved point refers to no row of the uploaded file")
        return replace(s, upload=key, upload_name=name, upload_header=header, n=len(xy))

    def data(self, s: RunSettings) -> TutorialData:
        with self.lock:
            _, _, xy = self.items[s.upload]
        x = torch.from_numpy(xy[:, :1].copy())
        y = torch.from_numpy(xy[:, 1:2].copy())
        torch.manual_seed(s.seed)
        layer = nn.Linear(1, 1)
        for i, (px, py) in s.moved.items():
            x[i, 0], y[i, 0] = px, py
        if s.added:
            x = torch.cat([x, torch.tensor([[float(px)] for px, _ in s.added])])
            y = torch.cat([y, torch.tensor([[float(py)] for _, py in s.added])])
        return TutorialData(x, y[:, 0], float(layer.weight.item()), float(layer.bias.item()))


UPLOADS = Uploads()


def parse_csv(raw: bytes, name: str) -> tuple[bool, np.ndarray]:
    """(has a header, float32 array (n, 2)) from the first two columns of a CSV."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadError(f"{name} is not UTF-8 text; save it as a CSV file") from None
    lines = text.splitlines()
    if not lines:
        raise UploadError(f"{name} is empty; give two numeric columns x,y")
    header = bool(re.search(r"[A-Za-z_]", lines[0].split(",")[0] + "," + ",".join(lines[0].split(",")[1:2])))
    try:
        xy = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=int(header), usecols=(0, 1), dtype=np.float32,
                        ndmin=2)
    except (ValueError, IndexError) as exc:
        raise UploadError(f"{name}: {str(exc).splitlines()[0]}; the first two columns must be numbers (x, y)") from None
    if len(xy) < 2:
        raise UploadError(f"{name} has {len(xy)} data rows; give at least 2")
    if len(xy) > LIMITS["n"]:
        raise UploadError(f"{name} has {len(xy)} rows; the playground takes at most {LIMITS['n']}")
    if not np.isfinite(xy).all():
        raise UploadError(f"{name} has a missing or infinite value; remove that row")
    return header, xy


async def read_upload(request) -> dict:
    """Read the request body (refused past 10 MB without reading the rest) and keep the data."""
    name = re.sub(r"[^\w.\-]", "_", request.headers.get("x-filename", "data.csv"))[:80] or "data.csv"
    limit = LIMITS["upload_bytes"]
    if int(request.headers.get("content-length", 0) or 0) > limit:
        raise UploadError(f"{name} is larger than 10 MB; the playground takes CSV files up to 10 MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(f"{name} is larger than 10 MB; the playground takes CSV files up to 10 MB")
        chunks.append(chunk)
    header, xy = parse_csv(b"".join(chunks), name)
    return {"id": UPLOADS.add(name, header, xy), "name": name, "n": int(len(xy))}
