//! The token classes of highlighted code: which syntect scopes make a keyword, a string, a
//! comment…, and their colours in a GitHub-like light and dark stylesheet.

use std::collections::HashMap;
use std::sync::LazyLock;

use syntect::parsing::Scope;

static RULES: LazyLock<Vec<(Scope, Rule)>> =
    LazyLock::new(|| RULE_TABLE.iter().filter_map(|&(name, rule)| Some((Scope::new(name).ok()?, rule))).collect());

/// The kinds of token that get a class (`hl-` + [`Class::name`]); everything else is plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Keyword,
    Str,
    Comment,
    Number,
    Constant,
    Function,
    Type,
    Tag,
    Attr,
    Var,
    Macro,
    Inserted,
    Deleted,
}

impl Class {
    pub(super) const ALL: [Class; 13] = [
        Class::Keyword,
        Class::Str,
        Class::Comment,
        Class::Number,
        Class::Constant,
        Class::Function,
        Class::Type,
        Class::Tag,
        Class::Attr,
        Class::Var,
        Class::Macro,
        Class::Inserted,
        Class::Deleted,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Class::Keyword => "k",
            Class::Str => "s",
            Class::Comment => "c",
            Class::Number => "n",
            Class::Constant => "cn",
            Class::Function => "f",
            Class::Type => "t",
            Class::Tag => "tg",
            Class::Attr => "at",
            Class::Var => "v",
            Class::Macro => "p",
            Class::Inserted => "di",
            Class::Deleted => "dd",
        }
    }
}

/// What a scope means for the text under it. A token's class comes from its innermost scope
/// that has one, searching outwards; a `Stop` scope (the embedding language, a plain variable,
/// an interpolation inside a string) ends the search with plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Is(Class),
    /// `keyword.operator`: plain, unless it is a word (`and`, `instanceof`, `as`): a keyword.
    Operator,
    /// A mapping key: a string in it is an attribute name (JSON keys).
    Key,
    Stop,
    /// No meaning (punctuation, most `meta.*`): look further out.
    Skip,
}

/// Scope prefixes and their rules; the first prefix that matches wins, so specific ones come first.
const RULE_TABLE: &[(&str, Rule)] = {
    use Class::*;
    use Rule::*;
    &[
        ("comment", Is(Comment)),
        ("string", Is(Str)),
        ("constant.numeric", Is(Number)),
        ("constant.character.escape", Is(Str)),
        ("constant.other.placeholder", Is(Str)),
        ("constant.character.entity", Is(Constant)),
        ("constant.character", Is(Str)),
        ("constant", Is(Constant)),
        ("keyword.operator.word", Is(Keyword)),
        ("keyword.operator", Operator),
        ("keyword.other.unit", Is(Number)),
        ("keyword", Is(Keyword)),
        ("storage.type.string", Is(Str)),
        ("storage.modifier.attribute", Is(Macro)),
        ("storage", Is(Keyword)),
        ("entity.name.function.preprocessor", Is(Macro)),
        ("entity.name.constant.preprocessor", Is(Macro)),
        ("entity.name.macro", Is(Macro)),
        ("entity.name.function", Is(Function)),
        ("entity.name.tag", Is(Tag)),
        ("entity.name.constant", Is(Constant)),
        ("entity.name.section", Skip),
        ("entity.name.label", Skip),
        ("entity.name", Is(Type)),
        ("entity.other.inherited-class", Is(Type)),
        ("entity.other.attribute-name", Is(Attr)),
        ("entity.other.pseudo-class", Is(Attr)),
        ("entity.other.pseudo-element", Is(Attr)),
        ("support.function", Is(Function)),
        ("support.macro", Is(Macro)),
        ("support.type.property-name", Is(Attr)),
        ("support.type", Is(Type)),
        ("support.class", Is(Type)),
        ("support.constant", Is(Constant)),
        ("support.variable", Is(Var)),
        ("variable.language", Is(Var)),
        ("variable.function", Is(Function)),
        ("variable.annotation", Is(Macro)),
        ("variable.other.constant", Is(Constant)),
        ("variable", Stop),
        ("markup.heading", Is(Keyword)),
        ("markup.inserted", Is(Inserted)),
        ("markup.deleted", Is(Deleted)),
        ("markup.raw", Is(Str)),
        ("meta.preprocessor", Is(Macro)),
        ("meta.annotation", Is(Macro)),
        ("meta.diff.header", Is(Keyword)),
        ("meta.diff.range", Is(Macro)),
        ("meta.structure.dictionary.key", Key),
        ("meta.mapping.key", Key),
        ("meta.interpolation", Stop),
        ("meta.embedded", Stop),
        ("meta.template.expression", Stop),
        ("source", Stop),
        ("text", Stop),
    ]
};

/// The class of text under a scope stack, and whether it is an operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) class: Option<Class>,
    pub(super) operator: bool,
}

/// Scope → rule, memoized (scopes are interned, so there are few distinct ones per block).
#[derive(Default)]
pub(super) struct Classifier {
    rules: HashMap<Scope, Rule>,
}

impl Classifier {
    fn rule(&mut self, scope: Scope) -> Rule {
        *self.rules.entry(scope).or_insert_with(|| {
            RULES.iter().find(|(prefix, _)| prefix.is_prefix_of(scope)).map_or(Rule::Skip, |&(_, rule)| rule)
        })
    }

    /// The class of text under `stack` (innermost scope last).
    pub(super) fn token(&mut self, stack: &[Scope]) -> Token {
        let mut token = Token::default();
        for &scope in stack.iter().rev() {
            match self.rule(scope) {
                Rule::Stop => break,
                Rule::Operator => token.operator = true,
                Rule::Key if token.class == Some(Class::Str) => return Token { class: Some(Class::Attr), ..token },
                // Strings search on for a mapping key around them.
                Rule::Is(class) if token.class.is_none() => {
                    token.class = Some(class);
                    if class != Class::Str {
                        break;
                    }
                }
                _ => {}
            }
        }
        token
    }
}

/// Token class, light colour, dark colour. Readable on the code backgrounds (`#f6f8fa` light,
/// `#111316` dark); no backgrounds of their own.
const COLOURS: [(Class, &str, &str); 13] = [
    (Class::Keyword, "#cf222e", "#ff7b72"),
    (Class::Str, "#0a3069", "#a5d6ff"),
    (Class::Comment, "#59636e", "#8b949e"),
    (Class::Number, "#0550ae", "#79c0ff"),
    (Class::Constant, "#0550ae", "#79c0ff"),
    (Class::Function, "#8250df", "#d2a8ff"),
    (Class::Type, "#953800", "#ffa657"),
    (Class::Tag, "#116329", "#7ee787"),
    (Class::Attr, "#0550ae", "#79c0ff"),
    (Class::Var, "#0550ae", "#79c0ff"),
    (Class::Macro, "#1b7c83", "#56d4dd"),
    (Class::Inserted, "#116329", "#7ee787"),
    (Class::Deleted, "#82071e", "#ffa198"),
];

/// The stylesheet for the `hl-` classes. Token colours only (comments also italic): the
/// background and base colour are left to the page's own `pre` styling.
///
/// The two themes are mutually exclusive, so rules of one theme never outweigh the other by
/// selector specificity: dark applies under `:root[data-theme=dark]` and, when the OS prefers
/// dark, under `:root:not([data-theme=light])`; light (the default) everywhere else.
pub(super) fn css() -> String {
    let mut out = String::from("/* Syntax highlighting: token classes of highlighted code. */\n");
    out.push_str("@media not all and (prefers-color-scheme: dark) {\n");
    write_rules(&mut out, ":root:not([data-theme=dark])", false);
    out.push_str("}\n");
    write_rules(&mut out, ":root[data-theme=light]", false);
    out.push_str("@media (prefers-color-scheme: dark) {\n");
    write_rules(&mut out, ":root:not([data-theme=light])", true);
    out.push_str("}\n");
    write_rules(&mut out, ":root[data-theme=dark]", true);
    out
}

fn write_rules(out: &mut String, scope: &str, dark: bool) {
    for (class, light_colour, dark_colour) in COLOURS {
        let colour = if dark { dark_colour } else { light_colour };
        let italic = if class == Class::Comment { "; font-style: italic" } else { "" };
        out.push_str(&format!("{scope} .hl-{} {{ color: {colour}{italic} }}\n", class.name()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_has_both_themes_for_every_class() {
        let css = css();
        // Light by default, dark when the OS prefers it; either when chosen.
        let block = |open: &str| css.split_once(open).and_then(|(_, rest)| rest.split_once("\n}\n")).map(|b| b.0);
        let light_default = block("@media not all and (prefers-color-scheme: dark) {\n").unwrap_or_default();
        let dark_default = block("@media (prefers-color-scheme: dark) {\n").unwrap_or_default();
        let rules = [
            (light_default, ":root:not([data-theme=dark])"),
            (&css, "\n:root[data-theme=light]"),
            (dark_default, ":root:not([data-theme=light])"),
            (&css, "\n:root[data-theme=dark]"),
        ];
        for (text, scope) in rules {
            for class in Class::ALL {
                assert!(
                    text.contains(&format!("{scope} .hl-{} {{ color: #", class.name())),
                    "{scope} {class:?}: {css}"
                );
            }
        }
        assert_ne!(light_default.replace("dark", "light"), dark_default);
        assert!(css.contains(".hl-c { color: #59636e; font-style: italic }"), "{css}");
        assert!(!css.contains("background"));
        assert_eq!(css.matches('{').count(), css.matches('}').count());
        // Every rule line is scoped.
        for line in css.lines().filter(|l| l.contains(".hl-")) {
            assert!(line.starts_with(":root"), "{line}");
        }
        assert!(css.len() < 4096, "{}", css.len());
    }
}
