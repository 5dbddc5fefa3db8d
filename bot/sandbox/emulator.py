"""A local stand-in for Telegram's Bot API, served over HTTP with aiohttp.

An unmodified aiogram 3 bot talks to it through
``AiohttpSession(api=TelegramAPIServer.from_base(base_url))``; tests and the
sandbox terminal act as Telegram users through the JSON control API under
``/_emu/`` (see ``bot.sandbox.client.EmulatorClient``).

Routes:
    /bot{token}/{method}            Bot API methods (GET or POST; JSON, urlencoded or multipart)
    /file/bot{token}/{file_path}    file downloads, as ``getFile`` paths
    /_emu/...                       control API for tests and the terminal

Run standalone with ``python -m bot.sandbox.emulator --host 127.0.0.1 --port 8081``;
the first line printed is the base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import aiohttp
from aiohttp import BodyPartReader, MultipartReader, web

from bot.sandbox.core import TOKEN_RE, ControlError, EmulatorCore, Fault, WebhookConfig
from bot.sandbox.params import BotAPIError, Params, normalise, read_call
from bot.sandbox.state import QueuedUpdate, now

__all__ = ["SECRET_HEADER", "BotAPIEmulator", "main"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
_MAX_BODY = 64 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(payload, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )


def _api_error(error: BotAPIError) -> web.Response:
    return _json_response(error.payload(), status=error.error_code)


class BotAPIEmulator:
    """Bot API emulator: one bot, private chats with any number of emulated users.

    State is in memory; uploaded files are written under ``files_dir`` (a
    temporary directory, removed on ``stop``, when not given).
    """

    def __init__(
        self,
        *,
        bot_username: str = "partner_assistant_bot",
        bot_first_name: str = "Partner Assistant",
        files_dir: Path | None = None,
        webhook_attempts: int = 3,
        webhook_retry_delay: float = 0.2,
        webhook_timeout: float = 30.0,
    ) -> None:
        self._own_files_dir = files_dir is None
        self._files_dir = files_dir
        self._bot_username = bot_username
        self._bot_first_name = bot_first_name
        self.webhook_attempts = webhook_attempts
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self._core: EmulatorCore | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running")
        return self._base_url

    @property
    def core(self) -> EmulatorCore:
        """The in-memory state, for in-process inspection."""
        if self._core is None:
            raise RuntimeError("the emulator is not running")
        return self._core

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving and return the base URL (``port=0`` picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        if self._files_dir is None:
            self._files_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bot-api-emulator-"))
        self._core = EmulatorCore(
            bot_username=self._bot_username,
            bot_first_name=self._bot_first_name,
            files_root=self._files_dir,
        )
        runner = web.AppRunner(self._build_app(), handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self._base_url = f"http://{shown_host}:{bound_port}"
        self._http = aiohttp.ClientSession()
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="bot-api-emulator-webhook")
        return self._base_url

    async def stop(self) -> None:
        """Stop serving, end pending long polls and remove the temporary files directory."""
        if self._core is not None:
            self._core.closing = True
            self._core.updates.changed.fire()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._own_files_dir and self._files_dir is not None:
            await asyncio.to_thread(shutil.rmtree, self._files_dir, True)
            self._files_dir = None
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY)
        routes: list[tuple[str, str, Handler]] = [
            ("*", "/bot{token}/{method}", self._bot_method),
            ("GET", "/file/bot{token}/{file_path:.+}", self._download),
            ("GET", "/_emu/health", self._health),
            ("POST", "/_emu/updates/message", self._control(lambda core, body: core.user_message(body))),
            ("POST", "/_emu/updates/callback", self._control(lambda core, body: core.press(body))),
            ("POST", "/_emu/updates/inline_query", self._control(lambda core, body: core.inline_query(body))),
            (
                "POST",
                "/_emu/updates/chosen_inline_result",
                self._control(lambda core, body: core.chosen_inline_result(body)),
            ),
            ("GET", "/_emu/chats/{chat_id}/messages", self._chat_messages),
            ("GET", "/_emu/calls", self._calls),
            ("GET", "/_emu/callback_answers", self._simple(lambda core: core.callback_answers)),
            ("GET", "/_emu/inline_answers", self._simple(lambda core: core.inline_answers)),
            ("GET", "/_emu/inline_messages", self._simple(lambda core: core.list_inline_messages())),
            ("GET", "/_emu/commands", self._simple(lambda core: core.list_commands())),
            ("GET", "/_emu/webhook", self._simple(self._webhook_state)),
            ("POST", "/_emu/faults", self._add_fault),
            ("DELETE", "/_emu/faults", self._clear_faults),
            ("POST", "/_emu/wait_idle", self._wait_idle),
            ("GET", "/_emu/files/{file_id}", self._raw_file),
            ("POST", "/_emu/reset", self._reset),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        return app

    # ------------------------------------------------------------------ bot side

    async def _bot_method(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not TOKEN_RE.match(token):
            return _api_error(BotAPIError(401, "Unauthorized"))
        try:
            params = await read_call(request)
            result = await self.core.call(token, request.match_info["method"], params)
        except BotAPIError as error:
            return _api_error(error)
        return _json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if not TOKEN_RE.match(request.match_info["token"]):
            return _api_error(BotAPIError(401, "Unauthorized"))
        stored = self.core.files.by_path(request.match_info["file_path"])
        if stored is None:
            return _api_error(BotAPIError(404, "Not Found"))
        return web.Response(
            body=await self.core.files.read(stored),
            content_type=stored.mime_type or "application/octet-stream",
        )

    # ------------------------------------------------------------------ webhook delivery

    def _webhook_state(self, core: EmulatorCore) -> dict[str, Any]:
        hook = core.webhook
        return {
            "url": hook.url if hook else None,
            "secret_token": hook.secret_token if hook else None,
            "pending_update_count": len(core.updates),
            "last_error_message": hook.last_error_message if hook else None,
        }

    async def _webhook_loop(self) -> None:
        """Deliver queued updates one by one while a webhook is set."""
        core = self.core
        while not core.closing:
            hook = core.webhook
            batch = core.updates.peek(1) if hook is not None else []
            if hook is None or not batch:
                await core.updates.changed.wait(1.0)
                continue
            update = batch[0]
            if await self._deliver(hook, update):
                core.updates.pop_delivered(update.update_id)

    async def _deliver(self, hook: WebhookConfig, update: QueuedUpdate) -> bool:
        """POST one update; ``True`` once it is done with (delivered or given up on)."""
        assert self._http is not None
        headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        for attempt in range(1, self.webhook_attempts + 1):
            if self.core.webhook is not hook:
                return False
            try:
                async with self._http.post(
                    hook.url, json=update.payload(), headers=headers, timeout=timeout
                ) as response:
                    if 200 <= response.status < 300:
                        await self._run_webhook_reply(hook, response)
                        return True
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            hook.last_error_date = now()
            hook.last_error_message = error
            log.warning("webhook delivery of update %s failed (attempt %s): %s", update.update_id, attempt, error)
            if attempt < self.webhook_attempts:
                await asyncio.sleep(self.webhook_retry_delay * attempt)
        return self.core.webhook is hook

    async def _run_webhook_reply(self, hook: WebhookConfig, response: aiohttp.ClientResponse) -> None:
        """Execute a Bot API method returned in the webhook response body, as Telegram does."""
        values: dict[str, Any] = {}
        content_type = response.content_type
        try:
            if content_type == "application/json":
                body = await response.json()
                if isinstance(body, dict):
                    values = body
            elif content_type.startswith("multipart/"):
                reader = MultipartReader(response.headers, response.content)
                async for part in reader:
                    if isinstance(part, BodyPartReader) and part.name and part.filename is None:
                        values[part.name] = (await part.read(decode=True)).decode(part.get_charset("utf-8"))
        except (ValueError, aiohttp.ClientError) as exc:
            log.warning("unreadable webhook reply: %s", exc)
            return
        method = values.pop("method", None)
        if not isinstance(method, str) or not method:
            return
        with contextlib.suppress(BotAPIError):
            await self.core.call(hook.token, method, Params(values=normalise(values)))

    # ------------------------------------------------------------------ control API

    def _control(self, action: Callable[[EmulatorCore, dict[str, Any]], Awaitable[dict[str, Any]]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                body = await _json_body(request)
                return _json_response(await action(self.core, body))
            except ControlError as error:
                return _json_response({"error": error.message}, status=error.status)

        return handler

    def _simple(self, view: Callable[[EmulatorCore], Any]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _json_response(view(self.core))

        return handler

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return _json_response({"ok": True, "base_url": self._base_url})

    async def _chat_messages(self, request: web.Request) -> web.StreamResponse:
        try:
            chat_id = int(request.match_info["chat_id"])
        except ValueError:
            return _json_response({"error": "chat_id must be an integer"}, status=400)
        return _json_response(self.core.chat_messages(chat_id))

    async def _calls(self, request: web.Request) -> web.StreamResponse:
        return _json_response(self.core.list_calls(request.query.get("method")))

    async def _add_fault(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            fault = Fault(
                method=str(body["method"]).lower(),
                error_code=int(body["error_code"]),
                remaining=int(body.get("times", 1)),
                description=body.get("description"),
                retry_after=None if body.get("retry_after") is None else int(body["retry_after"]),
                chat_id=None if body.get("chat_id") is None else int(body["chat_id"]),
            )
        except ControlError as error:
            return _json_response({"error": error.message}, status=error.status)
        except (KeyError, TypeError, ValueError) as error:
            return _json_response({"error": f"bad fault description: {error}"}, status=400)
        self.core.add_fault(fault)
        return _json_response({"ok": True})

    async def _clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.core.faults.clear()
        return _json_response({"ok": True})

    async def _wait_idle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            quiet_ms = float(body.get("quiet_ms", 250))
            timeout = float(body.get("timeout", 10))
        except ControlError as error:
            return _json_response({"error": error.message}, status=error.status)
        except (TypeError, ValueError):
            return _json_response({"error": "quiet_ms and timeout must be numbers"}, status=400)
        return _json_response({"idle": await self.core.wait_idle(quiet_ms, timeout)})

    async def _raw_file(self, request: web.Request) -> web.StreamResponse:
        stored = self.core.files.get(request.match_info["file_id"])
        if stored is None:
            return _json_response({"error": "file not found"}, status=404)
        return web.Response(
            body=await self.core.files.read(stored),
            content_type=stored.mime_type or "application/octet-stream",
        )

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        self.core.reset()
        return _json_response({"ok": True})


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


# ---------------------------------------------------------------------- command line


async def _serve(args: argparse.Namespace) -> None:
    emulator = BotAPIEmulator(
        bot_username=args.bot_username,
        bot_first_name=args.bot_first_name,
        files_dir=Path(args.files_dir) if args.files_dir else None,
    )
    base_url = await emulator.start(args.host, args.port)
    print(base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="Local Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot-username", default="partner_assistant_bot")
    parser.add_argument("--bot-first-name", default="Partner Assistant")
    parser.add_argument("--files-dir", default=None, help="where uploaded files are kept (default: temp dir)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
