"""Parsing Docusaurus Markdown/MDX sources: the same text, URL and anchors as the built page."""

from __future__ import annotations

import pytest

from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.models import Block, PageMeta, ParsedPage
from docsrag.parsing.layout import SourceLocation
from docsrag.parsing.markdown import parse_markdown

GUIDE = """---
id: create-doc
title: Create a doc
description: Create a Markdown Document
slug: /create-doc
sidebar_label: Create
---

# Create a doc

import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
export const Highlight = ({children}) => (
  <span style={{color: 'red'}}>{children}</span>
);

Create a Markdown file, `greeting.md`, and place it under the **docs** directory.

{/* an MDX comment */}
<!-- an HTML comment -->

## Install {#install}

```mdx-code-block
<Tabs>
<TabItem value="npm" label="npm">
```

```bash
npm install --save @docusaurus/core
```

```mdx-code-block
</TabItem>
<TabItem value="yarn" label="Yarn">
```

```bash
yarn add @docusaurus/core
```

```mdx-code-block
</TabItem>
</Tabs>
```

:::tip Use the preset

If you use the **preset**, skip this step.

:::

:::warning

Analytics only run in production.

:::

### Config file {#configFile}

```js title="docusaurus.config.js"
import {themes} from 'prism-react-renderer';
// highlight-next-line
export default {
  title: 'My Site',

  url: 'https://example.org',
};
```

<APITable>

| Name | Type | Default |
| --- | --- | --- |
| `path` | `string` | `'docs'` |
| `editUrl` | <code>string \\| EditUrlFunction</code> | `undefined` |

</APITable>

<details>
<summary>Why is it called <code>swizzling</code>?</summary>

The name comes from Objective-C.

</details>

## Usage

- Run `docusaurus start`
- Then build:
  - with `build`
  - and serve
- A loose item

  ```bash
  docusaurus serve
  ```

3. third
4. fourth

> Quoted words.

![Crowdin dashboard screenshot](/img/missing.png)

<DocCardList />

#### Usage

Duplicate heading text.

## What's next? 🚀

The end.
"""


def blocks(page: ParsedPage, kind: str) -> list[Block]:
    return [block for section in page.sections for block in section.blocks if block.kind == kind]


def all_text(page: ParsedPage) -> str:
    return "\n\n".join(section.text for section in page.sections)


@pytest.fixture(scope="module")
def page() -> ParsedPage:
    return parse_markdown("guides/docs/docs-create-doc.mdx", GUIDE)


def test_front_matter_gives_url_title_and_description(page: ParsedPage) -> None:
    assert page.path == "/docs/create-doc"
    assert page.title == "Create a doc"
    assert page.description == "Create a Markdown Document"
    assert page.kind == "docs"
    assert page.source_key == "guides/docs/docs-create-doc.mdx"


def test_anchors_follow_docusaurus(page: ParsedPage) -> None:
    outline = [(s.level, s.anchor, s.heading, s.heading_path) for s in page.sections]
    assert outline == [
        (1, None, "Create a doc", ()),
        (2, "install", "Install", ("Install",)),
        (3, "configFile", "Config file", ("Install", "Config file")),
        (2, "usage", "Usage", ("Usage",)),
        (4, "usage-1", "Usage", ("Usage", "Usage")),
        (2, "whats-next-", "What's next? 🚀", ("What's next? 🚀",)),
    ]


def test_mdx_syntax_does_not_leak_into_text(page: ParsedPage) -> None:
    text = all_text(page)
    for leak in (
        "import Tabs",
        "export const",
        "<Tabs>",
        "TabItem",
        "APITable",
        "DocCardList",
        "comment",
        "mdx-code-block",
        ":::",
        "{#",
        "<details>",
        "<summary>",
        "highlight-",
    ):
        assert leak not in text, leak  # fmt: skip
    assert page.sections[0].blocks[0].text == (
        "Create a Markdown file, greeting.md, and place it under the docs directory."
    )


def test_tabs_keep_their_labels(page: ParsedPage) -> None:
    assert [b.text for b in page.sections[1].blocks][:4] == [
        "npm:",
        "```bash\nnpm install --save @docusaurus/core\n```",
        "Yarn:",
        "```bash\nyarn add @docusaurus/core\n```",
    ]


def test_admonitions(page: ParsedPage) -> None:
    assert [b.text for b in blocks(page, "admonition")] == [
        "Tip: Use the preset\nIf you use the preset, skip this step.",
        "Warning: Analytics only run in production.",
    ]


def test_code_fences_keep_lines_and_title_but_not_magic_comments(page: ParsedPage) -> None:
    config = page.sections[2].blocks[0]
    assert config.kind == "code"
    assert config.text == (
        '```js title="docusaurus.config.js"\n'
        "import {themes} from 'prism-react-renderer';\n"
        "export default {\n"
        "  title: 'My Site',\n"
        "\n"
        "  url: 'https://example.org',\n"
        "};\n"
        "```"
    )


def test_tables_details_lists_and_quotes(page: ParsedPage) -> None:
    [table] = blocks(page, "table")
    assert table.text == (
        "Name | Type | Default\n"
        "path | string | 'docs'\n"
        "editUrl | string | EditUrlFunction | undefined"
    )
    [details] = blocks(page, "details")
    assert details.text == "Why is it called swizzling?\nThe name comes from Objective-C."
    bullet, ordered = blocks(page, "list")
    assert bullet.text == (
        "- Run docusaurus start\n"
        "- Then build:\n"
        "  - with build\n"
        "  - and serve\n"
        "- A loose item\n"
        "  ```bash\n"
        "  docusaurus serve\n"
        "  ```"
    )
    assert ordered.text == "3. third\n4. fourth"
    assert [b.text for b in blocks(page, "quote")] == ["> Quoted words."]
    assert "Crowdin dashboard screenshot" in all_text(page)


def test_title_comes_from_h1_then_front_matter_then_file_name() -> None:
    assert parse_markdown("a.md", "---\ntitle: From FM\n---\n\nBody.").title == "From FM"
    assert parse_markdown("a.md", "# From H1\n\nBody.").title == "From H1"
    assert parse_markdown("02-setup.md", "Body only.").title == "setup"
    assert parse_markdown("a.md", "---\nid: my-id\n---\nBody.").title == "my-id"


def test_the_title_h1_counts_for_duplicate_anchors() -> None:
    # Docusaurus slugs every heading, the title h1 included (it just renders h1 without id).
    page = parse_markdown("intro.md", "# Intro\n\nText.\n\n## Intro\n\nMore.\n")
    assert [s.anchor for s in page.sections] == [None, "intro-1"]


def test_explicit_ids_do_not_take_slugs() -> None:
    text = "## Setup {#setup}\n\nA.\n\n## Setup\n\nB.\n\n## Setup {#other-setup}\n\nC.\n"
    page = parse_markdown("x.md", text)
    assert [s.anchor for s in page.sections] == ["setup", "setup", "other-setup"]
    assert [s.heading for s in page.sections] == ["Setup", "Setup", "Setup"]


def test_heading_anchor_uses_inline_text() -> None:
    text = "## The `docusaurus.config.js` **file** [API](/api) <Highlight>now</Highlight>\n\nA.\n"
    page = parse_markdown("x.md", text)
    assert page.sections[0].anchor == "the-docusaurusconfigjs-file-api-now"
    assert page.sections[0].heading == "The docusaurus.config.js file API now"


def test_import_lines_inside_code_fences_are_kept() -> None:
    text = "Intro.\n\n```js\nimport React from 'react';\nexport default function A() {}\n```\n"
    [code] = blocks(parse_markdown("x.mdx", text), "code")
    assert code.text == "```js\nimport React from 'react';\nexport default function A() {}\n```"


def test_inline_tab_items_and_nested_admonitions() -> None:
    text = (
        ":::::info[Parent]\n\nParent content\n\n"
        '::::danger[Child]\n\n<Tabs>\n  <TabItem value="apple" label="Apple">An apple</TabItem>\n'
        '  <TabItem value="pear">A pear</TabItem>\n</Tabs>\n\n::::\n\n:::::\n'
    )
    [admonition] = blocks(parse_markdown("x.mdx", text), "admonition")
    assert admonition.text == (
        "Info: Parent\nParent content\n\nDanger: Child\nApple: An apple\n\npear: A pear"
    )


def test_index_docs_fold_into_folder_urls() -> None:
    assert parse_markdown("advanced/index.mdx", "# Advanced\n\nText.").path == "/docs/advanced/"
    assert (
        parse_markdown("api/plugin-methods/README.mdx", "Text.").path == "/docs/api/plugin-methods/"
    )
    assert parse_markdown("intro.md", "Text.", route_base_path="guide").path == "/guide/intro"


def test_drafts_and_unlisted_docs_are_unsupported() -> None:
    with pytest.raises(UnsupportedDocument, match="draft"):
        parse_markdown("x.md", "---\ndraft: true\n---\nText.")
    with pytest.raises(UnsupportedDocument, match="unlisted"):
        parse_markdown("x.md", "---\nunlisted: true\n---\nText.")


def test_invalid_front_matter_is_a_document_error() -> None:
    with pytest.raises(DocumentError, match="front matter"):
        parse_markdown("x.md", "---\ntitle: [unclosed\n---\nText.")


def test_description_falls_back_to_first_paragraph() -> None:
    page = parse_markdown("x.md", "# T\n\nFirst *paragraph* here.\n\nSecond.")
    assert page.description == "First paragraph here."


def test_windows_line_endings_and_jsx_images() -> None:
    text = (
        "---\r\ntitle: CRLF\r\n---\r\n\r\n:::tip\r\n\r\nHi\r\n\r\n:::\r\n\r\n"
        '<img src="/img/shot.png" alt="Dashboard screenshot" />\r\n\r\n'
        "```js\r\nconst a = 1;\r\nconst b = 2;\r\n```\r\n"
    )
    page = parse_markdown("x.mdx", text)
    assert page.title == "CRLF"
    assert [b.text for b in page.sections[0].blocks] == [
        "Tip: Hi",
        "Dashboard screenshot",
        "```js\nconst a = 1;\nconst b = 2;\n```",
    ]


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
        ("a*b*c and foo**bar**baz", "abc and foobarbaz"),
        ("**Note:** read _this_ and __that__", "Note: read this and that"),
        ("See [the `build` command](/docs/cli#build).", "See the build command."),
        ("![alt text](/img/x.png) and [ref link][ref]", "alt text and ref link"),
        ("`` a ` b `` and ` padded `", "a ` b and padded"),
        ("\\*not emphasis\\* and AT&amp;T", "*not emphasis* and AT&T"),
        ("<b>tag</b> and <https://example.org>", "tag and https://example.org"),
        ("~~strike~~ and __init__.py", "strike and init.py"),
        ('[titled](/x "Title") and [*em* link](/y)', "titled and em link"),
    ],
)
def test_inline_markdown_becomes_plain_text(markdown: str, text: str) -> None:
    page = parse_markdown("x.md", f"{markdown}\n\n[ref]: https://example.org\n")
    assert page.sections[0].blocks[0].text == text


def test_tables_anywhere_and_mdx_comments_in_code_kept() -> None:
    text = (
        "Intro.\n"
        "| Style | Syntax |\n"
        "| :-- | --: |\n"
        "| JSX | `{/* ... */}` |\n"
        "| Pipe | `a \\| b` |\n"
        "| Short |\n"
        "## Next\n\n"
        "- Item with a table:\n\n"
        "  | A | B |\n"
        "  | - | - |\n"
        "  | 1 | 2 |\n"
    )
    page = parse_markdown("x.mdx", text)
    assert [b.text for b in page.sections[0].blocks] == [
        "Intro.",
        "Style | Syntax\nJSX | {/* ... */}\nPipe | a | b\nShort |",
    ]
    assert page.sections[1].anchor == "next"
    assert page.sections[1].blocks[0].text == "- Item with a table:\n  A | B\n  1 | 2"


def test_a_doc_gets_its_docusaurus_id_in_its_meta() -> None:
    page = parse_markdown("01-guides/02-setup.md", "# Setup\n\nText.")
    assert page.meta == PageMeta(doc_id="guides/setup")
    page = parse_markdown("guides/setup.md", "---\nid: install\n---\n\nText.")
    assert (page.meta.doc_id, page.title, page.path) == (
        "guides/install",
        "install",
        "/docs/guides/install",
    )


def test_the_location_gives_route_kind_and_meta() -> None:
    meta = PageMeta(kind="docs", version="1.0", default_version=False, locale="fr")
    location = SourceLocation(
        key="guides/setup.md", route_base_path="docs/1.0", locale_prefix="fr", meta=meta
    )
    page = parse_markdown("i18n/fr/x/version-1.0/guides/setup.md", "# Installer", location=location)
    assert page.path == "/fr/docs/1.0/guides/setup"
    assert page.meta.doc_id == "guides/setup"
    assert (page.meta.version, page.meta.locale, page.meta.default_version) == ("1.0", "fr", False)

    post = SourceLocation(
        key="2024-01-15-hello/index.md",
        route_base_path="blog",
        meta=PageMeta(kind="blog", version=None),
    )
    page = parse_markdown("blog/2024-01-15-hello/index.md", "Hi there.", location=post)
    assert (page.kind, page.path, page.title) == ("blog", "/blog/2024/01/15/hello", "hello")
    assert page.meta.doc_id == "blog/2024/01/15/hello"
    with pytest.raises(UnsupportedDocument, match="draft post"):
        parse_markdown("blog/x.md", "---\ndraft: true\n---\nText.", location=post)
