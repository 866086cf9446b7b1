"""What the browser tests watch on a page: every request and what the viewports show."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Response

#: Upper bounds for the slow steps (OHIF's start-up alone takes seconds on 2 cores).
PAGE_TIMEOUT_MS = 45_000
RENDER_TIMEOUT = 60.0
QUIET_TIMEOUT = 45.0
QUIET_PERIOD = 1.5


@dataclass
class Exchange:
    request: Request
    response: Response | None = None
    failure: str | None = None
    done: bool = False


@dataclass
class Traffic:
    """Every request the browser makes, with its outcome."""

    exchanges: dict[int, Exchange] = field(default_factory=dict)
    last_change: float = field(default_factory=time.monotonic)

    @classmethod
    def watch(cls, context: BrowserContext) -> Traffic:
        traffic = cls()
        context.on("request", traffic._on_request)
        context.on("response", traffic._on_response)
        context.on("requestfinished", traffic._on_finished)
        context.on("requestfailed", traffic._on_failed)
        return traffic

    def _entry(self, request: Request) -> Exchange:
        self.last_change = time.monotonic()
        return self.exchanges.setdefault(id(request), Exchange(request))

    def _on_request(self, request: Request) -> None:
        self._entry(request)

    def _on_response(self, response: Response) -> None:
        self._entry(response.request).response = response

    def _on_finished(self, request: Request) -> None:
        self._entry(request).done = True

    def _on_failed(self, request: Request) -> None:
        entry = self._entry(request)
        entry.failure = request.failure or "failed"
        entry.done = True

    def pending(self) -> list[Exchange]:
        return [e for e in self.exchanges.values() if not e.done]

    def wait_until_quiet(self, page: Page) -> None:
        """Until nothing is in flight and nothing new started for QUIET_PERIOD seconds."""
        deadline = time.monotonic() + QUIET_TIMEOUT
        while time.monotonic() < deadline:
            quiet_for = time.monotonic() - self.last_change
            if not self.pending() and quiet_for >= QUIET_PERIOD:
                return
            page.wait_for_timeout(200)
        still = "\n".join(f"  {e.request.method} {e.request.url}" for e in self.pending())
        pytest.fail(f"requests still in flight after {QUIET_TIMEOUT} s:\n{still}")

    def problems(self) -> list[str]:
        """Each request that failed or was answered with status >= 400, in detail."""
        out = []
        for e in self.exchanges.values():
            status = e.response.status if e.response else None
            if e.failure is None and (status is None or status < 400):
                continue
            request = e.request
            lines = [f"{request.method} {request.url}"]
            lines += [f"    > {k}: {v}" for k, v in request.headers.items()]
            if e.failure is not None:
                lines.append(f"    failed: {e.failure}")
            if e.response is not None:
                lines.append(f"    < {e.response.status} {e.response.status_text}")
                lines += [f"    < {k}: {v}" for k, v in e.response.headers.items()]
                try:
                    body = e.response.text()[:500]
                except Exception as exc:  # the body may be gone (e.g. a failed stream)
                    body = f"(body unavailable: {exc})"
                lines.append(f"    < {body}")
            out.append("\n".join(lines))
        return out

    def to_json(self) -> list[dict[str, Any]]:
        rows = []
        for e in self.exchanges.values():
            row: dict[str, Any] = {
                "method": e.request.method,
                "url": e.request.url,
                "type": e.request.resource_type,
                "request_headers": e.request.headers,
            }
            if e.response is not None:
                row["status"] = e.response.status
                row["response_headers"] = e.response.headers
            if e.failure is not None:
                row["failure"] = e.failure
            rows.append(row)
        return rows

    def answered(self, prefix: str, contains: str = "") -> list[Exchange]:
        """Requests to URLs starting with ``prefix`` that were answered."""
        return [
            e
            for e in self.exchanges.values()
            if e.request.url.startswith(prefix)
            and contains in e.request.url
            and e.response is not None
        ]


def record(page: Page, traffic: Traffic, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"{name}.png")
    (artifacts / f"{name}-requests.json").write_text(json.dumps(traffic.to_json(), indent=1))


def assert_no_failed_requests(traffic: Traffic) -> None:
    problems = traffic.problems()
    assert not problems, f"{len(problems)} request(s) failed:\n\n" + "\n\n".join(problems)


#: Statistics of what each Cornerstone viewport canvas shows: the 2D canvas the
#: rendering engine copies its (WebGL or CPU) output into; overlays are DOM, not in it.
CANVAS_STATS = """
() => [...document.querySelectorAll('canvas.cornerstone-canvas')].map((canvas) => {
  const ctx = canvas.getContext('2d');
  if (!ctx || !canvas.width || !canvas.height) {
    return {width: canvas.width, height: canvas.height, levels: 0, lit: 0};
  }
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const levels = new Set();
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    const grey = (data[i] + data[i + 1] + data[i + 2]) / 3 | 0;
    levels.add(grey);
    if (grey > 16) lit += 1;
  }
  return {
    width: canvas.width, height: canvas.height,
    levels: levels.size, lit: lit / (canvas.width * canvas.height),
  };
})
"""


def rendered(stats: list[dict[str, Any]]) -> bool:
    # A CT slice of the phantom: the body fills a good part of the viewport and
    # shows many grey levels; a blank, black or single-colour canvas does not.
    return any(s["levels"] >= 32 and s["lit"] >= 0.05 for s in stats)


def wait_rendered(page: Page) -> list[dict[str, Any]]:
    """The viewport canvases' statistics once they show the image (or at the time limit)."""
    stats: list[dict[str, Any]] = []
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        stats = page.evaluate(CANVAS_STATS)
        if rendered(stats):
            break
        page.wait_for_timeout(100)
    return stats
