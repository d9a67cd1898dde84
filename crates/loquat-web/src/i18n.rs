//! Translations for one request. The locale is passed explicitly (never the process-wide
//! locale), so concurrent requests in different languages cannot mix.

use std::borrow::Cow;

use loquat_core::domain::Locale;

/// The translator handed to templates as `tr`.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub locale: Locale,
}

impl Tr {
    pub fn new(locale: Locale) -> Self {
        Self { locale }
    }

    /// The text for `key` in this locale (English when missing).
    pub fn t<'a>(&self, key: &'a str) -> Cow<'a, str> {
        rust_i18n::t!(key, locale = self.locale.code())
    }

    /// The text for `key` with `%{name}` replaced by `value`.
    pub fn t_with(&self, key: &str, name: &str, value: &str) -> String {
        self.t_args(key, &[(name, value)])
    }

    /// The text for `key` with each `%{name}` replaced by its value.
    pub fn t_args(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key).into_owned();
        for (name, value) in args {
            text = text.replace(&format!("%{{{name}}}"), value);
        }
        text
    }

    pub fn lang(&self) -> &'static str {
        self.locale.code()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(file: &str) -> BTreeSet<String> {
        file.lines()
            .filter(|line| !line.starts_with([' ', '#', '_']) && !line.is_empty())
            .filter_map(|line| line.split_once(':').map(|(key, _)| key.trim().to_owned()))
            .collect()
    }

    #[test]
    fn both_locales_have_the_same_keys() {
        let english = keys(include_str!("../locales/en.yml"));
        let chinese = keys(include_str!("../locales/zh-CN.yml"));
        assert!(english.len() > 50);
        let missing: Vec<_> = english.symmetric_difference(&chinese).collect();
        assert!(missing.is_empty(), "keys in only one locale: {missing:?}");
    }

    #[test]
    fn every_key_used_in_templates_and_code_exists() {
        let english = keys(include_str!("../locales/en.yml"));
        let mut used = BTreeSet::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src", "src/pages", "src/api"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("directory exists") {
                let path = entry.expect("readable").path();
                if path.is_file() {
                    files.push(std::fs::read_to_string(&path).expect("utf-8 file"));
                }
            }
        }
        for text in &files {
            for marker in ["t(\"", "t_with(\""] {
                for piece in text.split(marker).skip(1) {
                    if let Some(key) = piece.split('"').next()
                        && key.contains('.')
                        && !key.contains(' ')
                    {
                        used.insert(key.to_owned());
                    }
                }
            }
        }
        let missing: Vec<_> = used.iter().filter(|key| !english.contains(*key)).collect();
        assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
    }

    #[test]
    fn every_core_error_code_is_translated() {
        let english = keys(include_str!("../locales/en.yml"));
        let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../loquat-core/src");
        let mut sources = String::new();
        let mut stack = vec![core];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).expect("core sources") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    sources.push_str(&std::fs::read_to_string(path).expect("utf-8"));
                }
            }
        }
        let mut missing = Vec::new();
        let mut checked = 0;
        for (marker, prefix) in
            [("invalid(\"", "invalid."), ("invalid_with(\"", "invalid."), ("Conflict(\"", "conflict.")]
        {
            for piece in sources.split(marker).skip(1) {
                let code = piece.split('"').next().unwrap_or_default();
                checked += 1;
                if !code.is_empty() && !english.contains(&format!("{prefix}{code}")) {
                    missing.push(format!("{prefix}{code}"));
                }
            }
        }
        use loquat_core::llm::ProviderErrorKind::*;
        for kind in [
            InvalidKey,
            RateLimited,
            QuotaExceeded,
            ModelNotFound,
            ContextTooLong,
            ContentFiltered,
            Unreachable,
            Timeout,
            Unavailable,
            BadRequest,
            Protocol,
        ] {
            // Exhaustive on purpose: a new kind must be added here and translated.
            match kind {
                InvalidKey | RateLimited | QuotaExceeded | ModelNotFound | ContextTooLong | ContentFiltered
                | Unreachable | Timeout | Unavailable | BadRequest | Protocol => {}
            }
            let key = format!("provider_error.{}", kind.code());
            if !english.contains(&key) {
                missing.push(key);
            }
        }
        assert!(checked > 10, "found the error codes in loquat-core");
        assert!(missing.is_empty(), "untranslated codes: {missing:?}");
    }

    #[test]
    fn translates_per_call() {
        assert_eq!(Tr::new(Locale::English).t("chat.send"), "Send");
        assert_eq!(Tr::new(Locale::SimplifiedChinese).t("chat.send"), "发送");
    }
}
