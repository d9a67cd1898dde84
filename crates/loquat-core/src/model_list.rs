//! LobeChat's model-list language (`OPENAI_MODEL_LIST`):
//! `[+|-]id[->deployment][=Display Name][<contextTokens:fc:vision:reasoning:search:file>]`,
//! items separated by `,` or `，`; `-all` first hides every built-in model.

use crate::domain::ModelCard;

/// One item of a model list.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelListItem {
    /// `-all`: hide every built-in model.
    RemoveAll,
    /// `-id`: hide one model.
    Remove(String),
    /// `id` or `+id`, with its overrides.
    Add(ModelCard),
}

/// A model list item that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model list item {item:?}: {reason}")]
pub struct ModelListError {
    pub item: String,
    pub reason: &'static str,
}

/// Parses a whole model list. Empty items (`a,,b`, a trailing comma) are ignored.
pub fn parse_model_list(text: &str) -> Result<Vec<ModelListItem>, ModelListError> {
    text.split([',', '，']).map(str::trim).filter(|item| !item.is_empty()).map(parse_item).collect()
}

fn parse_item(item: &str) -> Result<ModelListItem, ModelListError> {
    let error = |reason| ModelListError { item: item.to_owned(), reason };
    if item == "-all" {
        return Ok(ModelListItem::RemoveAll);
    }
    if let Some(id) = item.strip_prefix('-') {
        let id = id.trim();
        if id.is_empty() {
            return Err(error("a removal needs a model id"));
        }
        return Ok(ModelListItem::Remove(id.to_owned()));
    }
    let item_body = item.strip_prefix('+').unwrap_or(item).trim();

    // The capability suffix `<...>` comes last.
    let (head, capabilities) = match item_body.find('<') {
        Some(start) => {
            let rest = &item_body[start + 1..];
            let inner = rest.strip_suffix('>').ok_or_else(|| error("`<` without a closing `>` at the end"))?;
            (item_body[..start].trim(), Some(inner))
        }
        None => (item_body, None),
    };
    let (id_part, display_name) = match head.split_once('=') {
        Some((id, name)) => (id.trim(), Some(name.trim()).filter(|n| !n.is_empty())),
        None => (head, None),
    };
    let (id, deployment) = match id_part.split_once("->") {
        Some((id, deployment)) => (id.trim(), Some(deployment.trim()).filter(|d| !d.is_empty())),
        None => (id_part, None),
    };
    if id.is_empty() {
        return Err(error("missing model id"));
    }
    let mut card = ModelCard::plain(id);
    card.deployment = deployment.map(str::to_owned);
    card.display_name = display_name.map(str::to_owned);
    if let Some(capabilities) = capabilities {
        let mut parts = capabilities.split(':');
        let context = parts.next().unwrap_or_default().trim();
        if !context.is_empty() {
            card.context_tokens = Some(context.parse().map_err(|_| error("the context size must be a number"))?);
        }
        for capability in parts.map(str::trim) {
            match capability {
                "fc" => card.function_calling = true,
                "vision" => card.vision = true,
                "reasoning" => card.reasoning = true,
                "search" => card.search = true,
                "file" => card.files = true,
                "" => {}
                _ => return Err(error("unknown capability (fc, vision, reasoning, search, file)")),
            }
        }
    }
    Ok(ModelListItem::Add(card))
}

impl std::fmt::Display for ModelListItem {
    /// The item in the model-list language (what `parse_model_list` reads back).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let card = match self {
            ModelListItem::RemoveAll => return f.write_str("-all"),
            ModelListItem::Remove(id) => return write!(f, "-{id}"),
            ModelListItem::Add(card) => card,
        };
        f.write_str(&card.id)?;
        if let Some(deployment) = &card.deployment {
            write!(f, "->{deployment}")?;
        }
        if let Some(name) = &card.display_name {
            write!(f, "={name}")?;
        }
        let flags = [
            (card.function_calling, "fc"),
            (card.vision, "vision"),
            (card.reasoning, "reasoning"),
            (card.search, "search"),
            (card.files, "file"),
        ];
        if card.context_tokens.is_some() || flags.iter().any(|(on, _)| *on) {
            f.write_str("<")?;
            if let Some(context) = card.context_tokens {
                write!(f, "{context}")?;
            }
            for (_, flag) in flags.iter().filter(|(on, _)| *on) {
                write!(f, ":{flag}")?;
            }
            f.write_str(">")?;
        }
        Ok(())
    }
}

/// Applies a parsed list to the built-in models: removals hide, additions enable or override.
/// A built-in named by an addition keeps its known capabilities unless the item sets them.
pub fn apply_model_list(builtins: &[ModelCard], items: &[ModelListItem]) -> Vec<ModelCard> {
    let mut models: Vec<ModelCard> = builtins.to_vec();
    for item in items {
        match item {
            ModelListItem::RemoveAll => models.clear(),
            ModelListItem::Remove(id) => models.retain(|model| &model.id != id),
            ModelListItem::Add(card) => {
                let known = builtins.iter().find(|model| model.id == card.id);
                let merged = merge(known, card);
                match models.iter_mut().find(|model| model.id == card.id) {
                    Some(existing) => *existing = merged,
                    None => models.push(merged),
                }
            }
        }
    }
    models
}

fn merge(known: Option<&ModelCard>, item: &ModelCard) -> ModelCard {
    let Some(known) = known else { return item.clone() };
    ModelCard {
        id: item.id.clone(),
        deployment: item.deployment.clone().or_else(|| known.deployment.clone()),
        display_name: item.display_name.clone().or_else(|| known.display_name.clone()),
        context_tokens: item.context_tokens.or(known.context_tokens),
        function_calling: item.function_calling || known.function_calling,
        vision: item.vision || known.vision,
        reasoning: item.reasoning || known.reasoning,
        search: item.search || known.search,
        files: item.files || known.files,
        ..known.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(card: ModelCard) -> ModelListItem {
        ModelListItem::Add(card)
    }

    #[test]
    fn parses_the_full_grammar() {
        let items = parse_model_list(
            "-all,+gpt-4o,gpt-35-turbo->my-deploy=GPT 3.5<16000:fc:vision>，qwen-max=通义千问 Max,-gpt-4",
        )
        .expect("parses");
        let mut azure = ModelCard::plain("gpt-35-turbo");
        azure.deployment = Some("my-deploy".into());
        azure.display_name = Some("GPT 3.5".into());
        azure.context_tokens = Some(16000);
        azure.function_calling = true;
        azure.vision = true;
        let mut qwen = ModelCard::plain("qwen-max");
        qwen.display_name = Some("通义千问 Max".into());
        assert_eq!(
            items,
            vec![
                ModelListItem::RemoveAll,
                add(ModelCard::plain("gpt-4o")),
                add(azure),
                add(qwen),
                ModelListItem::Remove("gpt-4".into()),
            ]
        );
    }

    #[test]
    fn parses_capabilities_without_context_size() {
        let items = parse_model_list("deepseek-r1<:reasoning:search:file>").expect("parses");
        let ModelListItem::Add(card) = &items[0] else { panic!("expected an addition") };
        assert_eq!(card.context_tokens, None);
        assert!(card.reasoning && card.search && card.files && !card.vision);
    }

    #[test]
    fn reports_bad_items() {
        assert!(parse_model_list("gpt<abc>").is_err());
        assert!(parse_model_list("gpt<128000:telepathy>").is_err());
        assert!(parse_model_list("gpt<128000").is_err());
        assert!(parse_model_list("=Name only").is_err());
        assert!(parse_model_list("-").is_err());
        assert_eq!(parse_model_list(" , ,").expect("empty is fine"), vec![]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Ids and names as people write them: letters, digits, `.-_/:` and CJK, no separators.
        fn word() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9][a-zA-Z0-9._/:-]{0,20}|[通义千问模型]{1,4}"
        }

        fn item() -> impl Strategy<Value = ModelListItem> {
            let card = (
                word(),
                proptest::option::of(word()),
                proptest::option::of("[a-zA-Z0-9][a-zA-Z0-9 ._()-]{0,20}[a-zA-Z0-9)]|名称"),
                proptest::option::of(1u32..2_000_000),
                any::<[bool; 5]>(),
            )
                .prop_map(|(id, deployment, name, context, flags)| {
                    let mut card = ModelCard::plain(id.trim_start_matches(['-', '+']).to_owned() + "m");
                    card.deployment = deployment;
                    card.display_name = name;
                    card.context_tokens = context;
                    [card.function_calling, card.vision, card.reasoning, card.search, card.files] = flags;
                    ModelListItem::Add(card)
                });
            prop_oneof![
                Just(ModelListItem::RemoveAll),
                word().prop_map(|id| ModelListItem::Remove(id.trim_start_matches(['-', '+']).to_owned() + "m")),
                card,
            ]
        }

        proptest! {
            #[test]
            fn any_text_parses_or_fails_cleanly(text in "\\PC{0,80}") {
                let _ = parse_model_list(&text);
            }

            #[test]
            fn written_lists_read_back_the_same(items in proptest::collection::vec(item(), 0..8), chinese_comma in any::<bool>()) {
                let separator = if chinese_comma { "，" } else { "," };
                let text = items.iter().map(ToString::to_string).collect::<Vec<_>>().join(separator);
                prop_assert_eq!(parse_model_list(&text).expect("a written list parses"), items);
            }

            #[test]
            fn applying_a_list_never_duplicates_ids(items in proptest::collection::vec(item(), 0..8)) {
                let builtins = vec![ModelCard::plain("gpt-4o"), ModelCard::plain("o3")];
                let models = apply_model_list(&builtins, &items);
                let mut ids: Vec<_> = models.iter().map(|m| m.id.clone()).collect();
                ids.sort();
                let before = ids.len();
                ids.dedup();
                prop_assert_eq!(before, ids.len());
            }
        }
    }

    #[test]
    fn applies_to_builtins() {
        let mut known = ModelCard::plain("gpt-4o");
        known.vision = true;
        known.context_tokens = Some(128_000);
        let builtins = vec![known, ModelCard::plain("gpt-4o-mini"), ModelCard::plain("o3")];

        let items = parse_model_list("-o3,gpt-4o=Omni,my-agent").expect("parses");
        let models = apply_model_list(&builtins, &items);
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["gpt-4o", "gpt-4o-mini", "my-agent"]);
        assert_eq!(models[0].label(), "Omni");
        assert!(models[0].vision, "built-in capabilities are kept");

        let only_custom = apply_model_list(&builtins, &parse_model_list("-all,my-agent").expect("parses"));
        assert_eq!(only_custom.len(), 1);
        assert_eq!(only_custom[0].id, "my-agent");
    }
}
