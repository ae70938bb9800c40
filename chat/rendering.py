"""Model output to safe HTML: markdown-it-py renders, Pygments colours fenced code of a
known language (class names only; chat.css colours them, light and dark), nh3 keeps
only harmless markup."""

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

CLASS_PREFIX = "hl-"
_formatter = HtmlFormatter(nowrap=True, classprefix=CLASS_PREFIX)


def _highlighted(code: str, language: str, attrs: str) -> str:
    """The code's inner HTML with Pygments' spans, or "" (markdown-it escapes it) when
    the fence names no language Pygments knows."""
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _formatter) if lexer else ""


# `breaks`: a single newline is a line break, as in the plain text shown while the
# reply streams (models write poems and lists with single newlines).
_markdown = MarkdownIt(
    "commonmark",
    {"html": False, "linkify": False, "breaks": True, "highlight": _highlighted},
).enable(["table", "strikethrough"])

_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "span",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}}
# Pygments' token classes, and no other class on a span.
_ALLOWED_CLASSES = {"span": {CLASS_PREFIX + name for name in STANDARD_TYPES.values()}}


def render_markdown(text: str) -> str:
    """Render `text` as markdown and sanitize it; never trust model output."""
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        allowed_classes=_ALLOWED_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
