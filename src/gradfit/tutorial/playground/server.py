"""``gradfit playground``: the learner's playground served on 127.0.0.1 by Starlette and uvicorn.

Routes: ``/`` the page, ``/static/*`` its script and style (shipped in the package: no network, no
CDN), ``/api/labels?lang=ko`` the page's words from the gettext catalog, ``POST /api/run`` one
control change in, a stream of server-sent events out (:func:`gradfit.tutorial.playground.engine.events`),
``POST /api/upload`` a CSV of (x, y) rows (at most 10 MB). Each request runs in the server's thread
pool, so several tabs work at once; a tab that sends a new change drops its old stream, which
cancels the run behind it.
"""
from __future__ import annotations

import json
import socket
import threading
import webbrowser
from pathlib import Path

from gradfit.tutorial.i18n import check_lang, translator
from gradfit.tutorial.playground.engine import events, to_json
from gradfit.tutorial.playground.inputs import InputError, parse_settings
from gradfit.tutorial.playground.labels import LABELS
from gradfit.tutorial.playground.uploads import UPLOADS, UploadError, read_upload

STATIC = Path(__file__).with_name("static")
MAX_SETTINGS_BYTES = 1 << 20


def labels(lang: str) -> dict[str, str]:
    _ = translator(lang)
    return {key: _(text) for key, text in LABELS.items()}


def create_app():
    """The Starlette application (tests drive it with its TestClient or a real browser)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def page(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def api_labels(request: Request):
        try:
            lang = check_lang(request.query_params.get("lang"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"lang": lang, "labels": labels(lang)})

    async def api_run(request: Request):
        body = await request.body()
        if len(body) > MAX_SETTINGS_BYTES:
            return JSONResponse({"error": "settings larger than 1 MB"}, status_code=413)
        try:
            obj = json.loads(body or b"{}")
            lang = check_lang(obj.get("lang"))
            settings, race = parse_settings(obj)
            if obj.get("upload"):
                settings = UPLOADS.attach(settings, str(obj["upload"]))
        except (InputError, UploadError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        cancel = threading.Event()

        def stream():
            try:
                for event in events(settings, race, lang, cancel):
                    yield f"data: {to_json(event)}\n\n"
            finally:  # the tab went away or sent a newer change
                cancel.set()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def api_upload(request: Request):
        try:
            entry = await read_upload(request)
        except UploadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=413 if "10 MB" in str(exc) else 400)
        return JSONResponse(entry)

    return Starlette(routes=[Route("/", page), Route("/api/labels", api_labels),
                             Route("/api/run", api_run, methods=["POST"]),
                             Route("/api/upload", api_upload, methods=["POST"]),
                             Mount("/static", StaticFiles(directory=STATIC), name="static")])


def free_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``port`` (0: a free one the system picks), so no port is guessed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot serve on {host}:{port} ({exc.strerror}); pick another --port or leave it out") from None
    sock.listen(128)
    return sock


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True, lang: str | None = None,
          ready=None) -> int:
    """Serve until interrupted; prints the address and opens the browser on it."""
    try:
        import uvicorn
    except ImportError:
        raise ValueError("the playground needs starlette and uvicorn: pip install 'gradfit[playground]'") from None
    import torch
    torch.set_num_threads(1)  # small problems: thread hand-offs cost more than they save, more so for many tabs
    sock = free_socket(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}/" + (f"?lang={check_lang(lang)}" if lang else "")
    print(f"gradfit playground: {url}  (Ctrl+C to stop)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    if ready is not None:
        ready(url)
    config = uvicorn.Config(create_app(), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
