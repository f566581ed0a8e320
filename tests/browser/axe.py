"""Accessibility checks with axe-core (Deque, MPL-2.0) in the page under test.

axe-core is not committed: `make test` (or `python -m tests.browser.axe`) downloads the pinned release from the npm
registry into tests/browser/.axe/ (git-ignored), checks it against the registry's sha512 integrity, and keeps
axe.min.js and its LICENSE. A test that needs it and finds it missing downloads it the same way, and skips saying
why when the registry cannot be reached.

    from tests.browser.axe import assert_no_serious_violations
    await assert_no_serious_violations(page)                  # the whole page
    await assert_no_serious_violations(page, "#board")        # one part of it
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

VERSION = "4.14.1"
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
#: `dist.integrity` of that release on registry.npmjs.org.
INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
DIR = Path(__file__).resolve().parent / ".axe" / f"axe-core-{VERSION}"
SCRIPT = DIR / "axe.min.js"
SERIOUS = ("serious", "critical")


def install(timeout: float = 60.0) -> Path:
    """Download and unpack axe.min.js (and its licence) once; return its path."""
    if SCRIPT.exists():
        return SCRIPT
    with urllib.request.urlopen(TARBALL, timeout=timeout) as res:  # noqa: S310 (a fixed https URL)
        data = res.read()
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise RuntimeError(f"{TARBALL}: integrity {algo}-{got} is not the pinned {INTEGRITY}")
    DIR.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in ("axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"):
            member = tar.extractfile(f"package/{name}")
            if member is not None:
                tmp = DIR / (name + ".part")
                tmp.write_bytes(member.read())
                tmp.replace(DIR / name)
    return SCRIPT


def _source() -> str:
    try:
        return install().read_text(encoding="utf-8")
    except OSError as exc:  # no network and nothing downloaded yet
        import pytest

        pytest.skip(f"axe-core {VERSION} not installed and not downloadable ({exc}); `make test` installs it")
        raise  # unreachable


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v.get('helpUrl', '')})")
        for node in v["nodes"][:8]:
            target = " > ".join(json.dumps(t) if not isinstance(t, str) else t for t in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ").strip()
            lines.append(f"    {target}: {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


async def run_axe(page: Any, context: str | dict | None = None, options: dict | None = None) -> dict[str, Any]:
    """Inject axe-core (evaluated, so a page's script policy does not block it) and return its results."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(_source())
    return await page.evaluate(
        "([ctx, opts]) => axe.run(ctx === null ? document : ctx, opts)",
        [context, {"resultTypes": ["violations"], **(options or {})}],
    )


async def assert_no_serious_violations(page: Any, context: str | dict | None = None, options: dict | None = None) -> None:
    """Fail listing every serious or critical axe violation: rule, impact, targets and what to fix."""
    results = await run_axe(page, context, options)
    bad = [v for v in results["violations"] if v.get("impact") in SERIOUS]
    assert not bad, f"axe-core {VERSION}: {len(bad)} serious/critical violation(s) on {page.url}\n" + format_violations(bad)


if __name__ == "__main__":
    try:
        print(install())
    except OSError as exc:
        print(f"could not download axe-core {VERSION} from the npm registry: {exc} (its tests will skip)", file=sys.stderr)
