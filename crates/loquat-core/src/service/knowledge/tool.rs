//! `search_knowledge`: the model searches the user's knowledge bases when it decides to (beside
//! the retrieval every question of an assistant with knowledge gets). The passages it finds
//! become numbered sources of the answer (the generation job numbers and stores them), so its
//! citations open them like any other.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::Knowledge;
use crate::domain::User;
use crate::llm::ToolSpec;
use crate::service::providers::Reach;
use crate::tools::{Tool, ToolFailure, ToolOutput};

/// The tool's name, as assistants choose it.
pub const NAME: &str = "search_knowledge";
/// What the model reads back of one search, at most (tokens, estimated).
const BUDGET: usize = 3_000;

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: NAME.to_owned(),
        description: "Search the user's knowledge bases (their documents). Returns numbered passages with file \
                      and page; cite the ones you use with their number in brackets, like [3]."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": { "query": { "type": "string", "description": "What to look for." } },
            "required": ["query"]
        }),
    }
}

/// The tool for one answer: the asker and what they can reach.
pub(crate) struct KnowledgeSearch {
    pub knowledge: Knowledge,
    pub person: User,
    pub reach: Reach,
    pub spec: ToolSpec,
}

#[async_trait]
impl Tool for KnowledgeSearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<ToolOutput, ToolFailure> {
        let query = arguments["query"].as_str().unwrap_or_default().trim().to_owned();
        if query.is_empty() {
            return Err(ToolFailure("the query is empty".into()));
        }
        let knowledge = &self.knowledge;
        let bases: Vec<_> = knowledge.list(self.person.id).await?.into_iter().map(|base| base.id).collect();
        if bases.is_empty() {
            return Ok("The user has no knowledge bases.".to_owned().into());
        }
        let mut budget = BUDGET;
        let sources = knowledge.retrieve(&self.person, &self.reach, &bases, &query, &mut budget, 0).await?;
        if sources.is_empty() {
            return Ok(format!("Nothing in the knowledge bases matches \"{query}\".").into());
        }
        Ok(ToolOutput { text: format!("Passages for \"{query}\"."), sources })
    }
}
