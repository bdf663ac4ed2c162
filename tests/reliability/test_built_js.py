"""The BUILT widget JS (modelviz_widgets/static/*.js, what the browser actually runs) parses no HTML
strings, compiles no code from strings and loads nothing from the network.

``js/src/source_safety.test.ts`` scans our TypeScript; the bundles also hold whatever esbuild
pulled in from dependencies, so they are scanned here too. Peers show why both matter: ipywidgets
itself set descriptions through ``innerHTML`` (jupyter-widgets/ipywidgets#2636, fixed in 8.0
by #2785) and scanners flagged every package bundling it (keplergl/kepler.gl#2546); anywidget
ESM runs with the page's privileges, so a remote ``import`` is arbitrary code
(marimo-team/marimo#9297, #9318).

One dynamic ``import()`` is allowed: the static-export runtime (export_runtime.js) imports each
view bundle from a ``blob:`` URL made with ``URL.createObjectURL`` on the text already inside the
HTML file, so an exported page needs no network. Any other ``import(`` fails the scan.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "modelviz_widgets" / "static"

# (label, pattern). Built from pieces so that this file itself would pass a scan for them.
FORBIDDEN: list[tuple[str, re.Pattern[str]]] = [
    ("inner" + "HTML", re.compile(r"\binner" + r"HTML\b")),
    ("outer" + "HTML", re.compile(r"\bouter" + r"HTML\b")),
    ("insertAdjacent" + "HTML", re.compile(r"insertAdjacent" + r"HTML")),
    ("document.wr" + "ite", re.compile(r"document\.wr" + r"ite(ln)?\b")),
    ("createContextual" + "Fragment", re.compile(r"createContextual" + r"Fragment")),
    ("DOMParser", re.compile(r"\bDOM" + r"Parser\b")),
    ("srcdoc", re.compile(r"\bsrc" + r"doc\b")),
    ("ev" + "al(", re.compile(r"(?<![\w$])ev" + r"al\s*\(")),
    ("new Func" + "tion / Func" + "tion(", re.compile(r"(?<![\w$.])Func" + r"tion\s*\(")),
    (
        "setTimeout/setInterval with a string",
        re.compile(r"\bset(Timeout|Interval)\s*\(\s*[\"'`]"),
    ),
    ("fe" + "tch(", re.compile(r"(?<![\w$])fe" + r"tch\s*\(")),
    ("XMLHttp" + "Request", re.compile(r"XMLHttp" + r"Request")),
    ("sendBea" + "con", re.compile(r"sendBea" + r"con")),
    ("WebSo" + "cket", re.compile(r"\bWebSo" + r"cket\b")),
    ("static import from a URL", re.compile(r"\b(from|import)\s*[\"'`](https?:)?//")),
    ("importScripts", re.compile(r"\bimport" + r"Scripts\b")),
]

# Any http(s) URL in a bundle, except XML namespaces (createElementNS needs them; none is fetched).
URL = re.compile(r"https?://[^\s\"'`)]+")
NAMESPACES = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml")

DYNAMIC_IMPORT = re.compile(r"(?<![\w$.])import\s*\(")
# The one allowed form: import(<name>) where <name> was just made by URL.createObjectURL.
BLOB_IMPORT = re.compile(r"(?<![\w$.])import\s*\(\s*([A-Za-z_$][\w$]*)\s*\)")


@dataclass(frozen=True)
class Finding:
    file: str
    rule: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}: …{self.excerpt}…"


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - 60) : end + 60].replace("\n", " ")


def _blob_import(text: str, match: re.Match[str]) -> bool:
    """True when the ``import(`` at ``match`` imports a name assigned from URL.createObjectURL
    shortly before it (the export runtime's pattern)."""
    call = BLOB_IMPORT.match(text, match.start())
    if call is None:
        return False
    name = re.escape(call.group(1))
    before = text[max(0, match.start() - 400) : match.start()]
    return re.search(rf"(?<![\w$]){name}\s*=\s*URL\.createObjectURL\(", before) is not None


def scan(path: Path) -> tuple[list[Finding], int]:
    """Every forbidden construct in one bundle, and how many blob-URL imports it has."""
    text = path.read_text(encoding="utf-8")
    findings: list[Finding] = []
    for rule, pattern in FORBIDDEN:
        for match in pattern.finditer(text):
            findings.append(Finding(path.name, rule, _excerpt(text, match.start(), match.end())))
    for match in URL.finditer(text):
        if not match.group(0).startswith(NAMESPACES):
            findings.append(
                Finding(path.name, "http(s) URL", _excerpt(text, match.start(), match.end()))
            )
    blob_imports = 0
    for match in DYNAMIC_IMPORT.finditer(text):
        if _blob_import(text, match):
            blob_imports += 1
        else:
            findings.append(
                Finding(
                    path.name,
                    "import() of something other than a blob: URL",
                    _excerpt(text, match.start(), match.end()),
                )
            )
    return findings, blob_imports


def bundles() -> list[Path]:
    found = sorted(STATIC.glob("*.js"))
    if not found:
        pytest.fail(
            f"no built JS in {STATIC}: run `make js` (or `cd js && npm run build`)", pytrace=False
        )
    return found


def test_built_bundles_parse_no_html_compile_no_strings_and_load_nothing_remote() -> None:
    found = bundles()
    assert {"feature_maps.js", "export_runtime.js"} <= {path.name for path in found}
    findings: list[Finding] = []
    blob_imports: dict[str, int] = {}
    for path in found:
        problems, blobs = scan(path)
        findings.extend(problems)
        if blobs:
            blob_imports[path.name] = blobs
    assert not findings, "forbidden constructs in the built JS:\n" + "\n".join(map(str, findings))
    # The export runtime's Blob-URL import is the only dynamic import, and it is still there (the
    # scan would silently pass if the allowed form stopped matching what esbuild emits).
    assert blob_imports == {"export_runtime.js": 1}, blob_imports


@pytest.mark.parametrize(
    ("injected", "rule"),
    [
        ("el.inner" + "HTML=t;", "inner" + "HTML"),
        ("n.insertAdjacent" + "HTML('beforeend',t);", "insertAdjacent" + "HTML"),
        ("document.wr" + "ite(t);", "document.wr" + "ite"),
        ("ev" + "al(t);", "ev" + "al("),
        ("new Func" + "tion('return 1')();", "new Func" + "tion / Func" + "tion("),
        ('setTimeout("go()",1);', "setTimeout/setInterval with a string"),
        ("import('https://cdn.example/x.js');", "import() of something other than a blob: URL"),
        ("import(u);", "import() of something other than a blob: URL"),
        ("fe" + "tch('https://example.org/x');", "fe" + "tch("),
        ('import x from "https://cdn.example/x.js";', "static import from a URL"),
    ],
)
def test_scanner_catches_a_forbidden_pattern_injected_into_a_copy(
    tmp_path: Path, injected: str, rule: str
) -> None:
    """The scan can fail: the same bundle with one forbidden construct appended is caught."""
    original = STATIC / "feature_maps.js"
    if not original.is_file():
        pytest.fail("modelviz_widgets/static/feature_maps.js is missing: run `make js`")
    copy = tmp_path / "feature_maps.js"
    shutil.copyfile(original, copy)
    assert scan(copy)[0] == []
    copy.write_text(copy.read_text(encoding="utf-8") + "\n" + injected + "\n", encoding="utf-8")
    findings, _ = scan(copy)
    assert rule in {finding.rule for finding in findings}, findings


def test_scanner_allows_only_the_blob_url_import(tmp_path: Path) -> None:
    bundle = tmp_path / "runtime.js"
    bundle.write_text(
        "let r=URL.createObjectURL(new Blob([s],{type:'text/javascript'}));n=import(r);",
        encoding="utf-8",
    )
    assert scan(bundle) == ([], 1)
    bundle.write_text("let r=location.hash.slice(1);n=import(r);", encoding="utf-8")
    findings, blobs = scan(bundle)
    assert blobs == 0 and [finding.rule for finding in findings] == [
        "import() of something other than a blob: URL"
    ]
