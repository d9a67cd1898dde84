//! Hostile inputs: each renders in time linear in its length (a generous bound even in a debug
//! build; before the limits some took minutes) and the output is still sanitized.

use std::time::{Duration, Instant};

use super::{assert_safe_html, render, render_streaming};
use crate::markdown::limits::MAX_NESTING;

/// Debug builds (dependencies at opt-level 1) render the worst of these in ~0.3 s.
const BOUND: Duration = Duration::from_secs(2);

fn cases() -> Vec<(&'static str, String)> {
    let staircase = |item: &str| {
        let mut md = String::new();
        let mut depth = 0;
        while md.len() < 200_000 {
            md.push_str(&"  ".repeat(depth));
            md.push_str(item);
            depth += 1;
        }
        md
    };
    vec![
        ("quotes", ">".repeat(100_000)),
        ("spaced quotes", "> ".repeat(100_000)),
        ("quote blocks", format!("{}x\n\n", ">".repeat(40)).repeat(4_500)),
        ("bullet lists", "- ".repeat(100_000)),
        ("ordered lists", "1. ".repeat(66_000)),
        ("star quote lists", "* > ".repeat(50_000)),
        ("indented lists", staircase("- x\n")),
        ("indented ordered lists", staircase("1. x\n")),
        ("stars", "*".repeat(100_000)),
        ("open emphasis", "*a ".repeat(66_000)),
        ("underscores", "_a_".repeat(66_000)),
        ("strong nests", "**a ".repeat(25_000) + &"b**".repeat(25_000)),
        ("emphasis nests", "*a **b ".repeat(14_000) + &"c** d*".repeat(14_000)),
        ("mixed delimiters", "*_".repeat(100_000)),
        ("small tables", "| a | b |\n|---|---|\n| 1 | 2 |\n\n".repeat(6_000)),
        ("wide table", "|a".repeat(10_000) + "|\n" + &"|-".repeat(10_000) + "|\n" + &"x\n".repeat(60_000)),
        ("long table", "|a|\n|-|\n".to_owned() + &"|b|\n".repeat(50_000)),
        ("huge fence", "```rust\n".to_owned() + &"let x = 1;\n".repeat(18_000) + "```\n"),
        ("many fences", (0..10_000).map(|i| format!("```rust\nfn a{i}() {{}}\n```\n")).collect()),
        ("open fences", "```\n".repeat(50_000)),
        (
            "link references",
            (0..8_000).map(|i| format!("[a{i}]: https://x.io/{i}\n")).collect::<String>()
                + &(0..8_000).map(|i| format!("[a{i}] ")).collect::<String>(),
        ),
        ("brackets", "[".repeat(100_000)),
        ("unclosed links", "[a](".repeat(50_000)),
        ("nested links", "[".repeat(50_000) + "x" + &"](https://x.io)".repeat(10_000)),
        ("image brackets", "![".repeat(100_000)),
        ("nested images", "![".repeat(20_000) + "x" + &"](https://x.io/i.png)".repeat(8_000)),
        ("backticks", "`".repeat(100_000)),
        ("backtick runs", (1..600).map(|i| "`".repeat(i) + " ").collect()),
        ("dollars", "$".repeat(100_000)),
        ("dollar pairs", "$a".repeat(100_000)),
        ("display dollars", "$$ ".repeat(66_000)),
        ("many formulas", (0..20_000).map(|i| format!("$x^{i}$ ")).collect()),
        ("deep braces", format!("${}x{}$ ", "{".repeat(4_000), "}".repeat(4_000)).repeat(24)),
        ("deep roots", format!("${}x$ ", "\\sqrt".repeat(1_500)).repeat(25)),
        (
            "macro bombs",
            r"$\def\a{xxxxxxxxxx}\def\b{\a\a\a\a\a\a\a\a\a\a}\def\c{\b\b\b\b\b\b\b\b\b\b}\c\c\c\c\c\c\c\c\c\c$ "
                .repeat(2_000),
        ),
        ("footnotes", (0..5_000).map(|i| format!("x[^{i}]\n\n[^{i}]: n\n\n")).collect()),
        ("angle brackets", "<".repeat(100_000)),
        ("html blocks", "<div>\n".repeat(33_000)),
        ("url with parens", format!("https://x.io/{}", ")".repeat(100_000))),
        ("url restarts", "h!https://a(".repeat(16_000)),
        ("www restarts", "www.abc/!".repeat(20_000)),
        ("many urls", "https://example.com/a ".repeat(9_000)),
        ("headings", "# h\n".repeat(50_000)),
        ("long words", "x".repeat(200_000)),
        ("chinese", "你好，**世界**。".repeat(20_000)),
    ]
}

#[test]
fn hostile_inputs_render_in_linear_time_and_stay_safe() {
    crate::markdown::warm_up();
    let mut slowest = (Duration::ZERO, "");
    for (name, md) in cases() {
        let started = Instant::now();
        let html = render(&md);
        let elapsed = started.elapsed();
        assert!(elapsed < BOUND, "{name} ({} bytes) took {elapsed:?}", md.len());
        slowest = slowest.max((elapsed, name));
        assert_safe_html(name, &html);
        let deepest = nesting_depth(&html);
        assert!(deepest <= MAX_NESTING + 4, "{name}: HTML nested {deepest} deep");
        let started = Instant::now();
        let streamed = render_streaming(&md);
        assert!(started.elapsed() < BOUND, "{name} (streaming) took {:?}", started.elapsed());
        assert!(!streamed.contains("<script"), "{name}");
    }
    println!("slowest: {} in {:?}", slowest.1, slowest.0);
}

#[test]
fn too_deep_containers_show_their_source() {
    let html = render(&">".repeat(100_000));
    assert_eq!(html.matches("<blockquote>").count(), MAX_NESTING, "{}", &html[..400]);
    assert_eq!(html.matches("&gt;").count(), 100_000 - MAX_NESTING);
    let html = render(&format!("{}deep *text*", "- ".repeat(100)));
    assert!(html.contains("- - - deep *text*"), "{html}");
    // Sane nesting is untouched.
    let html = render("> a\n> > b\n> > > c *d*\n\n- 1\n  - 2\n    - 3");
    assert!(html.contains("<blockquote>\n<p>c <em>d</em></p>\n</blockquote>"), "{html}");
    assert_eq!(html.matches("<ul>").count(), 3, "{html}");
}

#[test]
fn past_the_budget_text_is_plain() {
    let md = "| a |\n|---|\n".to_owned() + &"| <b>x</b> *y* |\n".repeat(60_000);
    let html = render(&md);
    assert!(!html.contains("<table"), "shown as plain text");
    assert!(html.starts_with("<p>| a |<br>\n|---|<br>\n| &lt;b&gt;x&lt;/b&gt; *y* |<br>"), "{}", &html[..200]);
    let long = "word ".repeat(300_000);
    assert!(render(&long) == format!("<p>{long}</p>\n"), "a text over the size budget is one plain paragraph");
    assert_eq!(crate::markdown::render_plain("a\n<b>\n\n\nc"), "<p>a<br>\n&lt;b&gt;</p>\n<p>c</p>\n");
}

#[test]
fn highlighting_and_math_have_a_budget_per_render() {
    let md: String = (0..5_000).map(|i| format!("```rust\nfn f{i}() {{ let x = {i}; }}\n```\n")).collect();
    let html = render(&md);
    let highlighted = html.matches("<pre class=\"code\" data-lang=\"rust\"><code><span").count();
    assert!(highlighted > 100 && highlighted < 5_000, "{highlighted} of 5000 blocks highlighted");
    assert_eq!(html.matches("<pre").count(), 5_000);
    let md: String = (0..20_000).map(|i| format!("$x_{{{i}}}$ ")).collect();
    let html = render(&md);
    let rendered = html.matches("<math").count();
    assert!(rendered > 1_000 && rendered < 20_000, "{rendered} of 20000 formulas rendered");
    assert_eq!(rendered + html.matches("class=\"math-error\"").count(), 20_000);
}

/// The deepest element nesting in `html` (void elements do not nest).
fn nesting_depth(html: &str) -> usize {
    const VOID: &[&str] = &["br", "hr", "img", "input", "mspace"];
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('/') {
            depth = depth.saturating_sub(1);
            rest = after;
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if !VOID.contains(&name.as_str()) {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
    }
    deepest
}
