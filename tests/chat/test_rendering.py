"""Model output to HTML: the layout of the streamed plain text survives rendering."""

from chat.rendering import render_markdown


def test_a_single_newline_is_a_line_break():
    """A poem's lines stay lines once the reply is rendered (they did while streaming)."""
    assert render_markdown("Roses are red,\nviolets are blue.") == (
        "<p>Roses are red,<br>\nviolets are blue.</p>\n"
    )


def test_a_blank_line_still_starts_a_paragraph():
    assert render_markdown("One.\n\nTwo.") == "<p>One.</p>\n<p>Two.</p>\n"


def test_code_blocks_keep_their_newlines_without_breaks():
    assert render_markdown("```\na\nb\n```") == "<pre><code>a\nb\n</code></pre>\n"


def test_fenced_code_of_a_known_language_is_highlighted():
    """Pygments' token classes (and only those) on spans; the text stays escaped."""
    html = render_markdown('```python\nreturn "<b>"\n```')
    assert '<code class="language-python">' in html
    assert '<span class="hl-k">return</span>' in html
    assert '<span class="hl-s2">"&lt;b&gt;"</span>' in html


def test_unknown_languages_and_plain_fences_are_left_plain():
    assert render_markdown("```klingon\n<b>x</b>\n```") == (
        '<pre><code class="language-klingon">&lt;b&gt;x&lt;/b&gt;\n</code></pre>\n'
    )


def test_no_other_class_survives():
    """Model text cannot add markup (html off): a span of its own stays text."""
    assert "<span" not in render_markdown('<span class="evil">x</span>')
